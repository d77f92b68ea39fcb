r"""Domain-adversarial training (DANN) of a GNN: a labelled source graph, an unlabelled target.

Ganin et al. (2016, "Domain-adversarial training of neural networks", JMLR 17) train a
feature extractor :math:`G_f`, a label head :math:`G_y` and a domain discriminator
:math:`G_d` together:

.. math::
    \min_{G_f, G_y, G_d} \; \mathcal{L}_y\big(G_y(G_f(X_s))\big)
    + \mathcal{L}_d\big(G_d(R_\lambda(G_f(X_s))), 0\big)
    + \mathcal{L}_d\big(G_d(R_\lambda(G_f(X_t))), 1\big)

where :math:`R_\lambda` is the gradient reversal layer (:class:`GradientReversal`):
identity forward, :math:`-\lambda` times the incoming gradient backward. The
discriminator learns to tell the domains apart, the extractor receives the reversed
gradient and learns features the discriminator cannot separate. :math:`\lambda` follows
Ganin et al.'s schedule :math:`\lambda_p = \frac{2}{1 + \exp(-\gamma p)} - 1`,
:math:`\gamma = 10`, with :math:`p` the training progress from 0 to 1
(:func:`grl_coefficient`).

Here :math:`G_f` is a :class:`~gnnleaky.nn.LeakyGNN` (one activation per layer) run on
each graph, :math:`G_y` a linear layer on the source's training nodes, :math:`G_d` a
two-layer MLP (ReLU, fixed for every extractor) on all nodes of both graphs (the domain
loss is the mean of the two graphs' mean binary cross-entropies, so a larger graph does
not weigh more). Model selection uses the source's validation nodes only; target labels
are used for scoring, never for selection. ``adapt=False`` is the source-only baseline:
the same networks and losses with :math:`\lambda = 0` (the discriminator still learns,
so its accuracy shows how separable the source-only features are).

:func:`reversed_gradient_share` measures how much of the reversed gradient passes the
extractor's activations on its way to the first layer (see its docstring for the exact
definition); :func:`train_dann` trains one model and returns every number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnleaky._validation import check_finite, check_graph, check_positive_int
from gnnleaky.nn import LeakyGNN
from gnnleaky.tasks.node_classification import NodeClassification
from gnnleaky.train.core import Bank, Evaluation, fit

__all__ = [
    "DANN",
    "DANNResult",
    "DomainAdversarial",
    "GradientReversal",
    "check_domain_pair",
    "csbm_pair",
    "domain_pair",
    "grad_reverse",
    "grl_coefficient",
    "reversed_gradient_share",
    "train_dann",
]

#: Graphs that share a feature space and a label set: the WebKB pages (1,703 words,
#: 5 classes), six directed pairs.
WEBKB = ("cornell", "texas", "wisconsin")

#: Targets named relative to a WebKB source (the sweep's ``task_params.target``):
#: ``next``/``previous`` in :data:`WEBKB`'s cyclic order (together the six pairs); for a
#: ``csbm`` source every rule means the shifted cSBM twin (:func:`csbm_pair`).
TARGET_RULES = ("next", "previous")


def target_name(source: str, target: str) -> str:
    """The target graph of ``source``: ``target`` itself, the neighbour in :data:`WEBKB`
    for ``next``/``previous``, or ``"csbm"`` for a cSBM source (its shifted twin). Raises
    a ValueError for a pair that differs in feature width or classes (from the registry,
    before any file is read).

    Example:
        >>> target_name("cornell", "next"), target_name("cornell", "previous")
        ('texas', 'wisconsin')
    """
    from gnnleaky.datasets import info

    src = info(source)
    if src.name == "csbm":
        if target not in ("", *TARGET_RULES, "csbm"):
            raise ValueError(
                f"domain pair: a csbm source is paired with its shifted csbm twin; "
                f"target must be 'next' (or empty), got {target!r}"
            )
        return "csbm"
    if target in ("", *TARGET_RULES):
        if src.name not in WEBKB:
            raise ValueError(
                f"domain pair: target {target or 'next'!r} is defined for the WebKB graphs "
                f"{list(WEBKB)} and csbm; name the target of {src.name!r} explicitly"
            )
        i = WEBKB.index(src.name)
        return WEBKB[(i - 1) % 3] if target == "previous" else WEBKB[(i + 1) % 3]
    tgt = info(target)
    if tgt.name == src.name:
        raise ValueError(f"domain pair: source and target are the same graph ({src.name!r})")
    for key, label in (("features", "features"), ("classes", "classes")):
        a, b = getattr(src, key), getattr(tgt, key)
        if a != b and "synthetic" not in (src.family, tgt.family):
            raise ValueError(
                f"domain pair: source {src.name!r} has {a} {label} but target {tgt.name!r} "
                f"has {b}; both graphs must share one feature space and one label set"
            )
    return tgt.name


class GradientReversal(torch.autograd.Function):
    r"""The gradient reversal layer :math:`R_\lambda`: :math:`R_\lambda(x) = x` forward,
    :math:`\partial R_\lambda / \partial x = -\lambda I` backward.

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> GradientReversal.apply(x, 0.5).sum().backward()
        >>> x.grad.tolist()
        [-0.5, -0.5, -0.5]
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.coefficient * grad, None


def grad_reverse(x: Tensor, coefficient: float = 1.0) -> Tensor:
    r""":class:`GradientReversal` with a checked ``coefficient`` :math:`\lambda \ge 0`."""
    return GradientReversal.apply(x, check_finite("coefficient", coefficient, minimum=0.0))


def grl_coefficient(progress: float, gamma: float = 10.0) -> float:
    r"""Ganin et al.'s schedule :math:`\lambda_p = \frac{2}{1 + \exp(-\gamma p)} - 1`.

    Args:
        progress (float): :math:`p \in [0, 1]`, the share of training done.
        gamma (float, optional): :math:`\gamma > 0`. (default: ``10.0``)

    Example:
        >>> grl_coefficient(0.0), round(grl_coefficient(1.0), 6)
        (0.0, 0.999909)
    """
    p = check_finite("progress", progress, minimum=0.0)
    if p > 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    g = check_finite("gamma", gamma, minimum=0.0)
    if g == 0.0:
        raise ValueError("gamma must be > 0, got 0")
    return 2.0 / (1.0 + math.exp(-g * p)) - 1.0


def _num_classes(data: Any) -> int:
    n = getattr(data, "num_classes", None)
    return int(n) if n else int(data.y.max()) + 1


def check_domain_pair(source: Any, target: Any) -> None:
    """Raise a ValueError unless ``source`` and ``target`` share the feature width and the
    number of classes (a DANN maps both graphs through one extractor and one label head).

    Example:
        >>> from gnnleaky.datasets import load
        >>> check_domain_pair(load("csbm", num_nodes=50), load("csbm", num_nodes=50,
        ...                   num_features=8))
        Traceback (most recent call last):
        ...
        ValueError: domain pair: source has 16 features but target has 8; ...
    """
    for name, data in (("source", source), ("target", target)):
        for key in ("x", "edge_index", "y"):
            if getattr(data, key, None) is None:
                raise ValueError(f"domain pair: {name} must have '{key}' (a PyG Data)")
    fs, ft = int(source.x.size(1)), int(target.x.size(1))
    if fs != ft:
        raise ValueError(
            f"domain pair: source has {fs} features but target has {ft}; both graphs "
            "must share one feature space (same width and meaning)"
        )
    cs, ct = _num_classes(source), _num_classes(target)
    if cs != ct:
        raise ValueError(
            f"domain pair: source has {cs} classes but target has {ct}; both graphs must "
            "share one label set"
        )


def domain_pair(source: str, target: str, root: Any = None) -> tuple[Any, Any]:
    """Load a source and a target graph by name (:func:`gnnleaky.datasets.load`) and check
    them with :func:`check_domain_pair` (the check runs on the registry's numbers first,
    so a mismatched pair is refused before any file is read).

    Args:
        source (str): Source dataset, e.g. ``"cornell"``.
        target (str): Target dataset, e.g. ``"texas"``; different from ``source``.
        root (str, optional): Data root (see :func:`gnnleaky.datasets.load`).
    """
    from gnnleaky.datasets import info, load

    if not isinstance(source, str) or not isinstance(target, str):
        raise ValueError(f"source and target must be dataset names, got {source!r}, {target!r}")
    s, t = info(source), info(target_name(source, target))
    src, tgt = load(s.name, root), load(t.name, root)
    check_domain_pair(src, tgt)
    return src, tgt


def csbm_pair(
    *,
    shift: float = 0.0,
    source_homophily: float = 0.8,
    target_homophily: float = 0.8,
    num_nodes: int = 1000,
    num_classes: int = 2,
    avg_degree: float = 5.0,
    snr: float = 1.5,
    num_features: int = 16,
    seed: int = 0,
    **kwargs: Any,
) -> tuple[Any, Any]:
    r"""Two cSBM graphs (:func:`gnnleaky.datasets.make_csbm`) with the same class means and
    a controlled shift between them.

    Both graphs share their class means :math:`\boldsymbol\mu_c` (``means_seed=seed``);
    the source has edge homophily ``source_homophily``, the target ``target_homophily``
    (a structure shift), and every target feature vector is moved by ``shift`` noise
    standard deviations along :math:`\mathbf{u} = (\boldsymbol\mu_1 -
    \boldsymbol\mu_0) / \|\boldsymbol\mu_1 - \boldsymbol\mu_0\|` (a feature-mean shift
    toward class 1: at ``shift = snr / 2`` class 0 of the target sits on the source's
    Bayes boundary). The graphs are drawn from different seeds (``seed`` and
    ``seed + 1``); the source keeps its random splits. ``kwargs``: further arguments of
    :func:`~gnnleaky.datasets.make_csbm` for both graphs (e.g. ``num_splits``).

    Example:
        >>> s, t = csbm_pair(shift=1.0, num_nodes=200, seed=0)
        >>> s.x.shape == t.x.shape, s.num_classes == t.num_classes
        (True, True)
    """
    from gnnleaky.datasets import class_means, load

    shift = check_finite("shift", shift)
    common = dict(
        num_nodes=num_nodes,
        num_classes=num_classes,
        avg_degree=avg_degree,
        snr=snr,
        num_features=num_features,
        means_seed=seed,
        **kwargs,
    )
    src = load("csbm", homophily=source_homophily, seed=seed, **common)
    tgt = load("csbm", homophily=target_homophily, seed=seed + 1, **common)
    if shift:
        means = class_means(num_features, num_classes, snr, seed)
        u = means[1] - means[0]
        norm = float((u**2).sum() ** 0.5)
        if norm > 0:
            tgt.x = tgt.x + shift * torch.as_tensor(u / norm, dtype=tgt.x.dtype)
    return src, tgt


class DANN(torch.nn.Module):
    r"""Extractor :math:`G_f` (a :class:`~gnnleaky.nn.LeakyGNN` whose last layer has no
    activation), label head :math:`G_y` (linear) and domain discriminator :math:`G_d`
    (linear, ReLU, linear to one logit: 1 = target).

    Args:
        in_channels (int): Feature width.
        hidden_channels (int): Width of every extractor layer and of the features.
        num_layers (int): Extractor layers.
        num_classes (int): Classes of the label head.
        **kwargs: Further arguments of :class:`~gnnleaky.nn.LeakyGNN` (``act``,
            ``act_kwargs``, ``dropout``, ``conv``, ...).

    Example:
        >>> m = DANN(16, 8, 2, 3, act="leaky_relu", act_kwargs={"negative_slope": 0.2})
        >>> m(torch.randn(5, 16), torch.tensor([[0, 1], [1, 0]])).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int,
        num_classes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes, 2)
        kwargs.pop("out_channels", None)
        self.extractor = LeakyGNN(in_channels, hidden_channels, num_layers, **kwargs)
        self.classifier = torch.nn.Linear(hidden_channels, num_classes)
        self.discriminator = torch.nn.Sequential(
            torch.nn.Linear(hidden_channels, hidden_channels),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden_channels, 1),
        )

    def features(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """:math:`G_f(X)`: ``[N, hidden_channels]``."""
        return self.extractor(x, edge_index)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Class logits :math:`G_y(G_f(X))`: ``[N, num_classes]``."""
        return self.classifier(self.features(x, edge_index))

    def domain_logits(self, h: Tensor, coefficient: float = 1.0) -> Tensor:
        r""":math:`G_d(R_\lambda(h))`: ``[N]``."""
        return self.discriminator(grad_reverse(h, coefficient)).view(-1)


def _domain_loss(ds: Tensor, dt: Tensor) -> Tensor:
    return 0.5 * (
        F.binary_cross_entropy_with_logits(ds, torch.zeros_like(ds))
        + F.binary_cross_entropy_with_logits(dt, torch.ones_like(dt))
    )


class DomainAdversarial:
    r"""The DANN task for :func:`gnnleaky.train.fit` (one :class:`DANN` model).

    .. math::
        \mathcal{L} = \mathrm{CE}_{V_{train}^s} + w \cdot \tfrac12\big(
        \mathrm{BCE}(G_d(R_{\lambda}(G_f(X_s))), 0) +
        \mathrm{BCE}(G_d(R_{\lambda}(G_f(X_t))), 1)\big),
        \quad \lambda = \lambda_{max} \lambda_p,\; p = \tfrac{e - 1}{E - 1}

    at epoch :math:`e` of :math:`E` (``epochs``). Scores: ``train``, ``val``, ``test``
    (source accuracy on its split), ``target`` (accuracy on every target node),
    ``domain_acc`` (the discriminator's balanced accuracy: the mean of its accuracies on
    the source's and the target's nodes), ``coefficient`` (:math:`\lambda` of the last
    step) and ``val_loss``.

    Args:
        source (torch_geometric.data.Data): Labelled graph with split masks.
        target (torch_geometric.data.Data): Graph with the same features and classes.
        split (int, optional): Mask column of the source. (default: ``0``)
        epochs (int, optional): :math:`E`, for the schedule. (default: ``200``)
        adapt (bool, optional): ``False``: source-only, :math:`\lambda = 0`.
            (default: ``True``)
        max_coefficient (float, optional): :math:`\lambda_{max}`. (default: ``1.0``)
        gamma (float, optional): :math:`\gamma` of the schedule. (default: ``10.0``)
        domain_weight (float, optional): :math:`w`. (default: ``1.0``)
    """

    def __init__(
        self,
        source: Any,
        target: Any,
        *,
        split: int = 0,
        epochs: int = 200,
        adapt: bool = True,
        max_coefficient: float = 1.0,
        gamma: float = 10.0,
        domain_weight: float = 1.0,
    ) -> None:
        check_domain_pair(source, target)
        if not isinstance(adapt, bool):
            raise ValueError(f"adapt must be a bool, got {adapt!r}")
        self.epochs = check_positive_int("epochs", epochs)
        self.max_coefficient = check_finite("max_coefficient", max_coefficient, minimum=0.0)
        self.gamma = check_finite("gamma", gamma, minimum=0.0)
        grl_coefficient(0.5, self.gamma)  # gamma > 0
        self.domain_weight = check_finite("domain_weight", domain_weight, minimum=0.0)
        self.adapt = adapt
        self.source = NodeClassification(source, split=split, metric="accuracy")
        check_graph(target.x, target.edge_index)
        self.xt = target.x if target.x.is_floating_point() else target.x.float()
        self.edge_index_t = target.edge_index
        self.yt = target.y.view(-1).long()
        self.num_classes = self.source.num_classes
        self.step = 0
        self.coefficient = 0.0

    def _model(self, bank: Bank) -> DANN:
        if bank.stacked or not isinstance(bank.module, DANN):
            raise ValueError("DomainAdversarial trains one DANN model (no stacked bank)")
        return bank.module

    def schedule(self, step: int) -> float:
        r""":math:`\lambda` at optimizer step ``step`` (1-based)."""
        if not self.adapt:
            return 0.0
        p = min(1.0, (step - 1) / max(1, self.epochs - 1))
        return self.max_coefficient * grl_coefficient(p, self.gamma)

    def losses(self, bank: Bank) -> Tensor:
        """The DANN loss of the one model: ``[1]``."""
        model = self._model(bank)
        self.step += 1
        self.coefficient = self.schedule(self.step)
        src = self.source
        hs = model.features(src.x, src.edge_index)
        ht = model.features(self.xt, self.edge_index_t)
        train = src.index["train"]
        loss = F.cross_entropy(model.classifier(hs[train]), src.y[train])
        dom = _domain_loss(
            model.domain_logits(hs, self.coefficient), model.domain_logits(ht, self.coefficient)
        )
        return (loss + self.domain_weight * dom).view(1)

    def evaluate(self, bank: Bank) -> Evaluation:
        """Source ``train``/``val``/``test``, ``target``, ``domain_acc``, ``val_loss``."""
        model = self._model(bank)
        src = self.source
        hs = model.features(src.x, src.edge_index)
        ht = model.features(self.xt, self.edge_index_t)
        out_s, out_t = model.classifier(hs), model.classifier(ht)
        ds, dt = model.domain_logits(hs), model.domain_logits(ht)
        finite = bool(torch.isfinite(out_s).all() and torch.isfinite(out_t).all())
        scores: dict[str, list[float]] = {}
        pred_s = out_s.argmax(-1)
        for name, idx in src.index.items():
            scores[name] = [
                float((pred_s[idx] == src.y[idx]).float().mean()) if idx.numel() else math.nan
            ]
        scores["target"] = [float((out_t.argmax(-1) == self.yt).float().mean())]
        scores["domain_acc"] = [
            0.5 * (float((ds < 0).float().mean()) + float((dt > 0).float().mean()))
        ]
        val = src.index["val"]
        scores["val_loss"] = [
            float(F.cross_entropy(out_s[val], src.y[val])) if val.numel() else math.nan
        ]
        scores["coefficient"] = [self.coefficient]
        return Evaluation(scores, [finite])


def reversed_gradient_share(model: DANN, task: DomainAdversarial) -> dict[str, Any]:
    r"""How much of the reversed domain gradient passes each activation of the extractor.

    In eval mode (no dropout), with :math:`R = -\mathcal{L}_d` (the domain loss through
    :math:`R_1`, so the gradient the extractor receives, up to the factor
    :math:`\lambda`), for each activated layer :math:`\ell` with pre-activation
    :math:`Z_\ell` and output :math:`H_\ell = \phi_\ell(Z_\ell)` on the nodes of both
    graphs:

    .. math::
        s_\ell = \frac{\sum_{i,c} |\partial R / \partial Z_\ell[i,c]|}
                      {\sum_{i,c} |\partial R / \partial H_\ell[i,c]|}
               = \frac{\sum_{i,c} |\phi_\ell'(Z_\ell[i,c])|\,|G_\ell[i,c]|}
                      {\sum_{i,c} |G_\ell[i,c]|},
        \qquad G_\ell = \partial R / \partial H_\ell,

    the share (L1 mass) of the reversed gradient arriving at the activation that passes
    it. For ReLU it is the share carried by units with :math:`Z > 0` (the rest is
    blocked at the zeros); for a Leaky ReLU of slope :math:`\alpha` it is
    :math:`s_{+} + \alpha (1 - s_{+})`. The *share that reaches the first layer* is
    :math:`s_1`, at the activation right after the first convolution (what passes it is
    all that updates the first layer's weights); ``chain`` is :math:`\prod_\ell s_\ell`
    over all activations (a product of per-layer ratios, not the ratio of a linearized
    network). ``inactive`` is each layer's fraction of entries with :math:`Z \le 0`.

    Returns:
        dict: ``share`` (list of :math:`s_\ell`, first layer first), ``first``,
        ``chain``, ``inactive`` (list).
    """
    model.eval()
    ext = model.extractor
    src = task.source
    with torch.enable_grad():
        hs, hid_s = ext.forward_hidden(src.x, src.edge_index)
        ht, hid_t = ext.forward_hidden(task.xt, task.edge_index_t)
        layers = [i for i in range(ext.num_layers) if ext._activated(i)]
        if not layers:
            return {"share": [], "first": math.nan, "chain": math.nan, "inactive": []}
        loss = _domain_loss(model.domain_logits(hs, 1.0), model.domain_logits(ht, 1.0))
        posts = [h.post[i] for i in layers for h in (hid_s, hid_t)]
        grads = torch.autograd.grad(loss, posts, allow_unused=True)
        shares, inactive = [], []
        for j, i in enumerate(layers):
            g_in = g_out = 0.0
            neg = total = 0
            for k, hid in enumerate((hid_s, hid_t)):
                g = grads[2 * j + k]
                z = hid.pre[i].detach().clone().requires_grad_(True)
                if g is None:
                    g = torch.zeros_like(z)
                (g_pre,) = torch.autograd.grad(ext.acts[i](z.clone()), z, g)
                g_in += float(g_pre.abs().double().sum())
                g_out += float(g.abs().double().sum())
                neg += int((z <= 0).sum())
                total += z.numel()
            shares.append(g_in / g_out if g_out > 0 else math.nan)
            inactive.append(neg / total)
    return {
        "share": shares,
        "first": shares[0],
        "chain": float(math.prod(shares)),
        "inactive": inactive,
    }


@dataclass
class DANNResult:
    """One DANN (or source-only) fit: scores at the epoch of best source validation
    accuracy, the reversed-gradient shares with those weights (``share``) and averaged
    over the recorded epochs (``share_mean``), and the fit's curve."""

    status: str
    best_epoch: int
    epochs_run: int
    source_val: float
    source_test: float
    target: float
    domain_acc: float
    share: dict[str, Any]
    share_mean: float
    curve: list[dict[str, Any]] = field(default_factory=list)


def train_dann(
    source: Any,
    target: Any,
    *,
    act: str = "relu",
    act_kwargs: dict[str, Any] | None = None,
    num_layers: int = 2,
    hidden_channels: int = 64,
    dropout: float = 0.5,
    conv: str = "gcn",
    adapt: bool = True,
    split: int = 0,
    epochs: int = 200,
    patience: int | None = None,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    max_coefficient: float = 1.0,
    share_every: int = 10,
    seed: int = 0,
) -> DANNResult:
    r"""Train one :class:`DANN` (``adapt=False``: the source-only baseline) on a domain pair.

    The model is initialised under ``seed`` (the caller's random state untouched) and
    trained by :func:`gnnleaky.train.fit` on :class:`DomainAdversarial`, selecting the
    epoch of best source validation accuracy. :func:`reversed_gradient_share` is recorded
    every ``share_every`` epochs (``share_mean``: the mean of the first-layer share over
    those records) and with the selected weights.

    Example:
        >>> s, t = csbm_pair(shift=1.0, num_nodes=100, seed=0)
        >>> r = train_dann(s, t, act="leaky_relu", act_kwargs={"negative_slope": 0.2},
        ...                hidden_channels=8, epochs=5)
        >>> r.status, r.epochs_run, 0.0 <= r.target <= 1.0, r.share["first"] > 0.2
        ('ok', 5, True, True)
    """
    check_domain_pair(source, target)
    check_positive_int("share_every", share_every)
    task = DomainAdversarial(
        source, target, split=split, epochs=epochs, adapt=adapt, max_coefficient=max_coefficient
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = DANN(
            task.source.x.size(1),
            hidden_channels,
            num_layers,
            task.num_classes,
            act=act,
            act_kwargs=act_kwargs or {},
            dropout=dropout,
            conv=conv,
        )
        shares: list[float] = []

        def record(epoch: int, bank: Bank) -> None:
            if epoch % share_every == 0 and epoch > 0:
                shares.append(reversed_gradient_share(model, task)["first"])

        [rec] = fit(
            model,
            task,
            epochs=epochs,
            patience=patience,
            lr=lr,
            weight_decay=weight_decay,
            callbacks=[record],
        )
    share = reversed_gradient_share(model, task)
    s = rec.scores
    nan = math.nan
    return DANNResult(
        status=rec.status,
        best_epoch=rec.best_epoch,
        epochs_run=rec.epochs_run,
        source_val=s.get("val", nan),
        source_test=s.get("test", nan),
        target=s.get("target", nan),
        domain_acc=s.get("domain_acc", nan),
        share=share,
        share_mean=float(sum(shares) / len(shares)) if shares else nan,
        curve=rec.curve,
    )
