r"""Link prediction with a graph autoencoder (GAE, Kipf & Welling 2016).

An encoder (any gnnleaky model, one activation per layer) embeds the nodes of the training
graph; PyG's inner-product decoder scores an edge :math:`(i, j)` by
:math:`\sigma(\mathbf{z}_i^\top \mathbf{z}_j)`. The edges are split by PyG's
:class:`~torch_geometric.transforms.RandomLinkSplit` into message-passing/training edges and
validation and test edges, each with as many sampled non-edges; scores are ROC-AUC and
average precision (AP) of the held-out edges against the non-edges.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnleaky._validation import check_finite
from gnnleaky.train.core import Bank, Evaluation

__all__ = ["LinkPrediction", "link_scores", "link_split"]


def link_split(
    data: Any, *, val_ratio: float = 0.05, test_ratio: float = 0.1, seed: int = 0
) -> tuple[Any, Any, Any]:
    r"""Train/validation/test graphs of :class:`~torch_geometric.transforms.RandomLinkSplit`
    (undirected graphs split by undirected edge, one sampled non-edge per held-out edge),
    drawn under ``seed`` (the caller's random state untouched).

    Each returned graph has ``edge_index`` (the training edges, for message passing) and
    ``pos_edge_label_index`` / ``neg_edge_label_index`` (its edges to score).

    Example:
        >>> from gnnleaky.datasets import load
        >>> tr, va, te = link_split(load("csbm", num_nodes=100, seed=0), seed=0)
        >>> va.pos_edge_label_index.size(1) == va.neg_edge_label_index.size(1)
        True
    """
    from torch_geometric.transforms import RandomLinkSplit
    from torch_geometric.utils import is_undirected

    check_finite("val_ratio", val_ratio, minimum=0.0)
    check_finite("test_ratio", test_ratio, minimum=0.0)
    if not val_ratio + test_ratio < 1.0 or test_ratio <= 0:
        raise ValueError(
            f"need test_ratio > 0 and val_ratio + test_ratio < 1, got val_ratio={val_ratio}, "
            f"test_ratio={test_ratio}"
        )
    undirected = bool(is_undirected(data.edge_index, num_nodes=data.num_nodes))
    split = RandomLinkSplit(
        num_val=float(val_ratio),
        num_test=float(test_ratio),
        is_undirected=undirected,
        add_negative_train_samples=False,
        split_labels=True,
    )
    keep = {k: data[k] for k in ("x", "edge_index") if k in data}
    from torch_geometric.data import Data

    graph = Data(**keep, num_nodes=data.num_nodes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return split(graph)


def link_scores(pos: Tensor, neg: Tensor) -> tuple[float, float]:
    r"""ROC-AUC and average precision of scores of true edges ``pos`` against non-edges
    ``neg``, as scikit-learn's ``roc_auc_score`` and ``average_precision_score`` compute
    them (tied scores share their average rank; AP steps at each distinct score), in
    float64; NaN when a side is empty or a score is not finite.

    .. math::
        \mathrm{AUC} = \frac{\sum_{i \in E^+} r_i - |E^+|(|E^+|+1)/2}{|E^+|\,|E^-|},
        \qquad \mathrm{AP} = \sum_n (R_n - R_{n-1}) P_n

    Example:
        >>> link_scores(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.85]))
        (0.75, 0.8333333333333333)
    """
    n_pos, n_neg = pos.numel(), neg.numel()
    if n_pos == 0 or n_neg == 0:
        return math.nan, math.nan
    score = torch.cat([pos.reshape(-1), neg.reshape(-1)]).double()
    if not bool(torch.isfinite(score).all()):
        return math.nan, math.nan
    values, inverse, counts = torch.unique(score, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts  # 0-based rank of each distinct value's first
    avg_rank = first.double() + (counts.double() + 1) / 2
    auc = (avg_rank[inverse[:n_pos]].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    u = values.numel()
    pos_at = torch.bincount(inverse[:n_pos], minlength=u).flip(0).double()
    neg_at = torch.bincount(inverse[n_pos:], minlength=u).flip(0).double()
    tp, fp = torch.cumsum(pos_at, 0), torch.cumsum(neg_at, 0)
    precision, recall = tp / (tp + fp), tp / n_pos
    ap = (torch.diff(recall, prepend=recall.new_zeros(1)) * precision).sum()
    return float(auc), float(ap)


class LinkPrediction:
    r"""GAE link prediction on one :func:`link_split` of a graph.

    .. math::
        \mathcal{L} = -\frac{1}{|E^+|}\sum_{(i,j) \in E^+} \log \sigma(\mathbf{z}_i^\top
        \mathbf{z}_j) - \frac{1}{|E^-|}\sum_{(i,j) \in E^-} \log\big(1 - \sigma(
        \mathbf{z}_i^\top \mathbf{z}_j)\big)

    with :math:`E^+` the training edges and :math:`E^-` as many non-edges sampled afresh
    each step (PyG's ``negative_sampling``, from torch's global generator), as in PyG's
    ``GAE.recon_loss``. Scores: ``train``/``val``/``test`` ROC-AUC (the training edges
    against one fixed sample of non-edges) and ``val_ap``/``test_ap``.

    Args:
        data (torch_geometric.data.Data): ``x`` and ``edge_index``.
        val_ratio (float, optional): Share of edges held out for validation.
            (default: ``0.05``)
        test_ratio (float, optional): Share of edges held out for testing.
            (default: ``0.1``)
        seed (int, optional): Seed of the split. (default: ``0``)

    Example:
        >>> from gnnleaky.nn import GCN
        >>> from gnnleaky.train import fit
        >>> from gnnleaky.datasets import load
        >>> data = load("csbm", num_nodes=100, seed=0)
        >>> task = LinkPrediction(data)
        >>> [rec] = fit(GCN(data.num_features, 16, 2, 8), task, epochs=3, weight_decay=0.0)
        >>> sorted(rec.scores)
        ['test', 'test_ap', 'train', 'val', 'val_ap']
    """

    metric = "roc_auc"

    def __init__(
        self, data: Any, *, val_ratio: float = 0.05, test_ratio: float = 0.1, seed: int = 0
    ) -> None:
        from torch_geometric.nn.models import InnerProductDecoder
        from torch_geometric.utils import negative_sampling

        for key in ("x", "edge_index"):
            if getattr(data, key, None) is None:
                raise ValueError(f"data must have '{key}'")
        self.train, self.val, self.test = link_split(
            data, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed
        )
        x = self.train.x
        self.x = x if x.is_floating_point() else x.float()
        self.edge_index = self.train.edge_index
        self.num_nodes = int(data.num_nodes)
        self.pos_train = self.train.pos_edge_label_index
        if self.pos_train.size(1) == 0:
            raise ValueError("the split leaves no training edges")
        self.decoder = InnerProductDecoder()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.neg_train = negative_sampling(
                self.edge_index, self.num_nodes, num_neg_samples=self.pos_train.size(1)
            )
        self._negative_sampling = negative_sampling

    def embed(self, bank: Bank) -> Tensor:
        """Node embeddings of the bank's models on the training graph: ``[K, N, C]``."""
        return bank.stack(bank.module(self.x, self.edge_index))

    def logits(self, z: Tensor, edge_index: Tensor) -> Tensor:
        r""":math:`\mathbf{z}_i^\top \mathbf{z}_j` of each edge, per model: ``[K, E]``."""
        return torch.stack([self.decoder(zk, edge_index, sigmoid=False) for zk in z])

    def losses(self, bank: Bank) -> Tensor:
        """Reconstruction loss of each model: ``[K]``."""
        z = self.embed(bank)
        neg = self._negative_sampling(
            self.edge_index, self.num_nodes, num_neg_samples=self.pos_train.size(1)
        )
        pos_logit, neg_logit = self.logits(z, self.pos_train), self.logits(z, neg)
        pos_loss = F.binary_cross_entropy_with_logits(
            pos_logit, torch.ones_like(pos_logit), reduction="none"
        )
        neg_loss = F.binary_cross_entropy_with_logits(
            neg_logit, torch.zeros_like(neg_logit), reduction="none"
        )
        return pos_loss.mean(1) + neg_loss.mean(1)

    def evaluate(self, bank: Bank) -> Evaluation:
        """ROC-AUC (``train``, ``val``, ``test``) and AP (``val_ap``, ``test_ap``) of each
        model."""
        z = self.embed(bank)
        finite = torch.isfinite(z).flatten(1).all(1).tolist()
        scores: dict[str, list[float]] = {
            k: [] for k in ("train", "val", "test", "val_ap", "test_ap")
        }
        parts = {
            "train": (self.pos_train, self.neg_train),
            "val": (self.val.pos_edge_label_index, self.val.neg_edge_label_index),
            "test": (self.test.pos_edge_label_index, self.test.neg_edge_label_index),
        }
        for name, (pos, neg) in parts.items():
            p, n = self.logits(z, pos), self.logits(z, neg)
            for k in range(z.size(0)):
                auc, ap = link_scores(p[k], n[k])
                scores[name].append(auc)
                if name != "train":
                    scores[f"{name}_ap"].append(ap)
        return Evaluation(scores, finite)
