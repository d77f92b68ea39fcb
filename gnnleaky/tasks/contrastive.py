r"""Graph contrastive learning, GRACE-style (Zhu et al., 2020), and what the negative slope
does to the gradient of its hard negatives.

Two views of the graph are drawn each step by dropping edges
(:func:`torch_geometric.utils.dropout_edge`) and masking feature columns
(:func:`torch_geometric.utils.mask_feature`); an encoder with one activation per layer
embeds both, a projection head (linear, ELU, linear) maps the embeddings to
:math:`\mathbf{u}_i, \mathbf{v}_i`, and the NT-Xent loss (:func:`nt_xent`) pulls a node's
two views together against every other node of both views (inter- and intra-view
negatives). The embeddings are evaluated by a logistic regression on the frozen features
(:func:`linear_probe`).

The hard-negative gradient share (:func:`hard_negative_gradient_share`) measures how much
of the gradient that the hardest negatives send back passes each activation of the
encoder: at a ReLU, units with a negative pre-activation pass none of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnleaky._validation import check_finite
from gnnleaky.train.core import Bank, Evaluation

__all__ = [
    "GRACE",
    "Contrastive",
    "hard_negative_gradient_share",
    "linear_probe",
    "nt_xent",
    "random_split",
]


def _logits(a: Tensor, b: Tensor, tau: float) -> tuple[Tensor, Tensor, Tensor]:
    """Cosine similarities over ``tau``: inter-view ``[..., N, N]`` (rows: ``a``) and the
    intra-view ones of ``a`` and of ``b``, their diagonals (a node with itself) at
    ``-inf``."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    eye = torch.eye(a.size(-2), dtype=torch.bool, device=a.device)
    between = a @ b.transpose(-1, -2) / tau
    refl_a = (a @ a.transpose(-1, -2) / tau).masked_fill(eye, -math.inf)
    refl_b = (b @ b.transpose(-1, -2) / tau).masked_fill(eye, -math.inf)
    return between, refl_a, refl_b


def nt_xent(z1: Tensor, z2: Tensor, tau: float = 0.5) -> Tensor:
    r"""GRACE's NT-Xent loss of two views, averaged over nodes and both directions.

    .. math::
        \ell(\mathbf{u}_i, \mathbf{v}_i) = -\log \frac{e^{s(\mathbf{u}_i, \mathbf{v}_i)/\tau}}
        {\sum_{j} e^{s(\mathbf{u}_i, \mathbf{v}_j)/\tau}
         + \sum_{j \ne i} e^{s(\mathbf{u}_i, \mathbf{u}_j)/\tau}},
        \qquad \mathcal{L} = \frac{1}{2N} \sum_i \big(\ell(\mathbf{u}_i, \mathbf{v}_i)
        + \ell(\mathbf{v}_i, \mathbf{u}_i)\big)

    with :math:`s` the cosine similarity: the positive is the node's other view; the
    negatives are every other node in the other view (inter-view) and in its own view
    (intra-view).

    Args:
        z1 (torch.Tensor): First view ``[N, C]`` (or ``[K, N, C]`` for K models).
        z2 (torch.Tensor): Second view, same shape.
        tau (float, optional): Temperature :math:`\tau > 0`. (default: ``0.5``)

    Returns:
        The loss: a scalar (``[K]`` for K models).

    Example:
        >>> z = torch.eye(3)
        >>> round(float(nt_xent(z, z, tau=1.0)), 4)  # -log(e / (e + 4))
        0.9048
    """
    tau = check_finite("tau", tau)
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if z1.shape != z2.shape or z1.dim() not in (2, 3):
        raise ValueError(
            f"z1 and z2 must have the same shape [N, C] or [K, N, C], got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    between, refl_1, refl_2 = _logits(z1, z2, tau)
    positive = between.diagonal(dim1=-2, dim2=-1)
    loss_1 = torch.logsumexp(torch.cat([between, refl_1], dim=-1), dim=-1) - positive
    loss_2 = (
        torch.logsumexp(torch.cat([between.transpose(-1, -2), refl_2], dim=-1), dim=-1) - positive
    )
    return (0.5 * (loss_1 + loss_2)).mean(-1)


def _hard_part(a: Tensor, b: Tensor, tau: float, k: int) -> Tensor:
    r"""The part of :math:`\frac{1}{N}\sum_i \ell(\mathbf{a}_i, \mathbf{b}_i)` whose gradient is
    that of the ``k`` inter-view negatives most similar to each anchor:
    :math:`\frac{1}{N}\sum_i \sum_{j \in H_k(i)} \bar p_{ij} s_{ij} / \tau`, with
    :math:`\bar p_{ij}` the (constant) softmax weight of pair ``(i, j)`` in the loss's
    denominator, since :math:`\partial \ell_i / \partial (s_{ij}/\tau) = p_{ij}` for a
    negative."""
    between, refl, _ = _logits(a, b, tau)
    n = a.size(0)
    p = torch.softmax(torch.cat([between, refl], dim=-1), dim=-1).detach()[:, :n]
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    hard = between.detach().masked_fill(eye, -math.inf).topk(min(k, n - 1), dim=1).indices
    return (p.gather(1, hard) * between.gather(1, hard)).sum(1).mean()


class GRACE(torch.nn.Module):
    r"""A GRACE model: an encoder, an activation on its output (GRACE activates every
    layer, the last included) and a projection head :math:`g(\mathbf{z}) =
    W_2\,\mathrm{ELU}(W_1 \mathbf{z})` used by the loss only.

    Args:
        encoder (torch.nn.Module): A gnnleaky model with ``out_channels`` outputs (its
            last layer has no activation: :attr:`out_act` adds it).
        out_channels (int): The encoder's output width.
        proj_channels (int): The projection head's hidden width.
        out_act (torch.nn.Module): The activation of the encoder's output (one instance
            of its own, e.g. ``encoder._act_spec.build(out_channels)``).

    Example:
        >>> from gnnleaky.nn import GCN, activation
        >>> model = GRACE(GCN(8, 16, 2, 4), 4, 6, activation("relu"))
        >>> len(model.activations()), model.project(torch.randn(3, 4)).shape
        (2, torch.Size([3, 4]))
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        out_channels: int,
        proj_channels: int,
        out_act: torch.nn.Module,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.out_act = out_act
        self.fc1 = torch.nn.Linear(out_channels, proj_channels)
        self.fc2 = torch.nn.Linear(proj_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The embeddings ``[N, out_channels]``."""
        return self.out_act(self.encoder(x, edge_index))

    def project(self, z: Tensor) -> Tensor:
        """The projection head."""
        return self.fc2(F.elu(self.fc1(z)))

    def activations(self) -> list[torch.nn.Module]:
        """The activation modules in order, first layer first (those that act)."""
        from gnnleaky.nn.activation import NoActivation

        acts = [a for a in getattr(self.encoder, "acts", []) if not isinstance(a, NoActivation)]
        return [*acts, self.out_act]


def _rate(name: str, value: float) -> float:
    value = check_finite(name, value, minimum=0.0)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


class Contrastive:
    r"""GRACE training on one graph: each step draws two views and returns the NT-Xent loss
    of the model's projected embeddings (:func:`nt_xent`). A :class:`GRACE` module is
    trained as one model (K = 1).

    Evaluation reports no score (self-supervised training runs its epochs; train it with
    ``fit(..., selection=None)`` to keep the last epoch) but checks that the embeddings
    of the clean graph are finite.

    Args:
        data (torch_geometric.data.Data): ``x`` and ``edge_index``.
        tau (float, optional): Temperature. (default: ``0.5``)
        drop_edge (tuple[float, float], optional): Edge-drop rates of the two views.
            (default: ``(0.2, 0.4)``)
        mask_feature (tuple[float, float], optional): Feature-column mask rates of the
            two views. (default: ``(0.3, 0.4)``)

    Example:
        >>> from gnnleaky.datasets import load
        >>> from gnnleaky.nn import GCN, activation
        >>> from gnnleaky.train import fit
        >>> data = load("csbm", num_nodes=60, seed=0)
        >>> model = GRACE(GCN(data.num_features, 8, 2, 8), 8, 8, activation("relu"))
        >>> [rec] = fit(model, Contrastive(data), epochs=3, selection=None)
        >>> rec.status, rec.best_epoch
        ('ok', 3)
    """

    metric = "accuracy"

    def __init__(
        self,
        data: Any,
        *,
        tau: float = 0.5,
        drop_edge: Sequence[float] = (0.2, 0.4),
        mask_feature: Sequence[float] = (0.3, 0.4),
    ) -> None:
        for key in ("x", "edge_index"):
            if getattr(data, key, None) is None:
                raise ValueError(f"data must have '{key}'")
        self.tau = check_finite("tau", tau)
        if not self.tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if len(drop_edge) != 2 or len(mask_feature) != 2:
            raise ValueError("drop_edge and mask_feature must each give two rates (one per view)")
        self.drop_edge = tuple(_rate("drop_edge", r) for r in drop_edge)
        self.mask_feature = tuple(_rate("mask_feature", r) for r in mask_feature)
        x = data.x
        self.x = x if x.is_floating_point() else x.float()
        self.edge_index = data.edge_index

    def views(self, generator: torch.Generator | None = None) -> list[tuple[Tensor, Tensor]]:
        """Two augmented views ``(x, edge_index)`` (from torch's global generator, or from
        ``generator``: the global state is then untouched)."""
        from torch_geometric.utils import dropout_edge, mask_feature

        with torch.random.fork_rng(devices=[], enabled=generator is not None):
            if generator is not None:
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            out = []
            for pe, pf in zip(self.drop_edge, self.mask_feature):
                edge_index, _ = dropout_edge(self.edge_index, p=pe)
                x, _ = mask_feature(self.x, p=pf, mode="col")
                out.append((x, edge_index))
        return out

    def losses(self, bank: Bank) -> Tensor:
        """The NT-Xent loss of the bank's one model: ``[1]``."""
        model = bank.module
        (x1, e1), (x2, e2) = self.views()
        z1, z2 = model.project(model(x1, e1)), model.project(model(x2, e2))
        return nt_xent(z1, z2, self.tau).view(1)

    def embed(self, model: torch.nn.Module) -> Tensor:
        """The model's embeddings of the clean graph (eval mode, no gradients)."""
        was = model.training
        model.eval()
        with torch.no_grad():
            z = model(self.x, self.edge_index)
        model.train(was)
        return z

    def evaluate(self, bank: Bank) -> Evaluation:
        """No scores; whether the clean graph's embeddings are finite."""
        z = bank.module(self.x, self.edge_index)
        return Evaluation({}, [bool(torch.isfinite(z).all())])


def hard_negative_gradient_share(
    model: GRACE,
    views: Sequence[tuple[Tensor, Tensor]],
    tau: float,
    k: int = 10,
) -> dict[str, list[float]]:
    r"""How much of the hard negatives' gradient passes each activation of the encoder.

    For each anchor :math:`i` (in either view) its hard negatives :math:`H_k(i)` are the
    ``k`` nodes of the other view most similar to it. The hard-negative part of the loss,

    .. math::
        \mathcal{L}_{hard} = \frac{1}{2N} \sum_{\text{both views}} \sum_i
        \sum_{j \in H_k(i)} \bar p_{ij}\, s_{ij} / \tau,

    with :math:`\bar p_{ij}` the softmax weight of :math:`(i, j)` in the NT-Xent
    denominator held constant, has exactly the gradient that these pairs contribute to
    :func:`nt_xent`'s. At the activation :math:`\phi_\ell` of layer :math:`\ell`, with
    pre-activation :math:`\mathbf{H}_\ell` (both views), the share is

    .. math::
        \rho_\ell = \frac{\lVert \partial \mathcal{L}_{hard} / \partial \mathbf{H}_\ell
        \rVert_F}{\lVert \partial \mathcal{L}_{hard} / \partial \phi_\ell(\mathbf{H}_\ell)
        \rVert_F}
        = \frac{\lVert \phi_\ell'(\mathbf{H}_\ell) \odot \mathbf{G}_\ell \rVert_F}
        {\lVert \mathbf{G}_\ell \rVert_F},

    the part of the gradient arriving at the activation that passes on to the layer's
    weights and the layers below: 1 for the identity; for ReLU the part carried by units
    whose pre-activation is positive (a unit below zero passes nothing); for a Leaky ReLU
    of slope :math:`\alpha` the units below zero pass :math:`\alpha` of theirs.

    Args:
        model (GRACE): The model.
        views (list): The two views ``(x, edge_index)``.
        tau (float): The loss's temperature.
        k (int, optional): Hard negatives per anchor. (default: ``10``)

    Returns:
        ``{"hard": [rho_1, ...], "loss": [...], "negative": [...]}``: per activation (first
        layer first) the share for :math:`\mathcal{L}_{hard}`, the same share for the whole
        loss, and the fraction of pre-activations below zero.

    Example:
        >>> from gnnleaky.nn import GCN, activation
        >>> model = GRACE(GCN(4, 8, 2, 8, act="identity"), 8, 8, activation("identity"))
        >>> x, ei = torch.randn(6, 4), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
        >>> out = hard_negative_gradient_share(model, [(x, ei), (x, ei)], tau=0.5, k=2)
        >>> [round(v, 6) for v in out["hard"]]  # the identity passes everything
        [1.0, 1.0]
    """
    acts = model.activations()
    seen: list[tuple[Tensor, Tensor]] = []

    def hook(_module: Any, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        seen.append((inputs[0], output))

    handles = [a.register_forward_hook(hook) for a in acts]
    try:
        (x1, e1), (x2, e2) = views
        z1 = model.project(model(x1, e1))
        z2 = model.project(model(x2, e2))
    finally:
        for h in handles:
            h.remove()
    if len(seen) != 2 * len(acts):
        raise ValueError("each activation must run once per view")
    hard = 0.5 * (_hard_part(z1, z2, tau, k) + _hard_part(z2, z1, tau, k))
    loss = nt_xent(z1, z2, tau)
    tensors = [t for pair in seen for t in pair]
    out: dict[str, list[float]] = {}
    for name, target in (("hard", hard), ("loss", loss)):
        grads = torch.autograd.grad(target, tensors, retain_graph=True, allow_unused=True)
        shares = []
        for layer in range(len(acts)):
            num = den = 0.0
            for view in range(2):
                i = 2 * (view * len(acts) + layer)
                g_in, g_out = grads[i], grads[i + 1]
                num += 0.0 if g_in is None else float(g_in.double().pow(2).sum())
                den += 0.0 if g_out is None else float(g_out.double().pow(2).sum())
            shares.append(math.sqrt(num / den) if den > 0 else math.nan)
        out[name] = shares
    out["negative"] = [
        float(sum((seen[v * len(acts) + layer][0] < 0).double().mean() for v in range(2)) / 2)
        for layer in range(len(acts))
    ]
    return out


def random_split(num_nodes: int, train_ratio: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A random split of the nodes into ``train_ratio`` for training and the rest for
    testing (GRACE's evaluation protocol), drawn from a generator seeded with ``seed``.

    Example:
        >>> tr, te = random_split(100, 0.1, seed=0)
        >>> len(tr), len(te), len(set(tr.tolist()) | set(te.tolist()))
        (10, 90, 100)
    """
    ratio = check_finite("train_ratio", train_ratio)
    if not 0 < ratio < 1:
        raise ValueError(f"train_ratio must be in (0, 1), got {train_ratio}")
    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(int(seed)))
    cut = round(ratio * num_nodes)
    return perm[:cut], perm[cut:]


#: The inverse regularization strengths a linear probe chooses from (GRACE's grid).
PROBE_C = tuple(2.0**e for e in range(-10, 10))


def linear_probe(
    embedding: Tensor,
    y: Tensor,
    train_index: Tensor,
    test_index: Tensor,
    *,
    val_index: Tensor | None = None,
    folds: int = 5,
) -> tuple[float, float]:
    r"""Test accuracy of a logistic regression on frozen, L2-normalized embeddings (GRACE's
    evaluation): one-vs-rest ``LogisticRegression(solver="liblinear")`` whose ``C`` is
    chosen from :data:`PROBE_C` on the validation nodes, or without them by ``folds``-fold
    cross-validation on the training nodes (ties: the smaller ``C``).

    Returns:
        ``(test accuracy, selection accuracy)`` (validation, or mean cross-validation).

    Example:
        >>> emb = torch.tensor([[1.0, 0.0]] * 10 + [[0.0, 1.0]] * 10)
        >>> y = torch.tensor([0] * 10 + [1] * 10)
        >>> idx = torch.arange(20)
        >>> linear_probe(emb, y, idx[::2], idx[1::2])[0]
        1.0
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.multiclass import OneVsRestClassifier

    x = F.normalize(embedding.detach().double(), dim=-1).numpy()
    labels = y.view(-1).numpy()
    tr, te = train_index.numpy(), test_index.numpy()

    def model(c: float) -> Any:
        return OneVsRestClassifier(LogisticRegression(solver="liblinear", C=c))

    if val_index is not None:
        va = val_index.numpy()
        best_c, best = PROBE_C[0], -1.0
        for c in PROBE_C:
            score = float((model(c).fit(x[tr], labels[tr]).predict(x[va]) == labels[va]).mean())
            if score > best:
                best_c, best = c, score
        clf = model(best_c).fit(x[tr], labels[tr])
        return float((clf.predict(x[te]) == labels[te]).mean()), best
    counts = np.bincount(labels[tr])
    n_folds = int(max(2, min(folds, counts[counts > 0].min())))
    search = GridSearchCV(
        model(1.0),
        {"estimator__C": list(PROBE_C)},
        cv=StratifiedKFold(n_folds, shuffle=False),
    )
    search.fit(x[tr], labels[tr])
    return float((search.predict(x[te]) == labels[te]).mean()), float(search.best_score_)
