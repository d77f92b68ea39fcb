r"""PReLU slopes as a sensor of feature shift: a detector with a detection AUC per layer.

:func:`~gnnleaky.analysis.slope_drift` shows that learned slopes move when a trained
model keeps training on shifted features. This module turns that response into a
detector that needs no labels and no retraining:

* :func:`shift_features`: the three shifts of growing size (``"mean"``: every column
  moved by ``size`` of its standard deviation; ``"scale"``: all features times
  ``1 + size``; ``"drop"``: a share ``size`` of the columns set to 0);
* :func:`shift_detection`: for batches of nodes of the clean and of the shifted graph,
  two per-layer statistics, each turned into a score against clean reference batches,
  and the ROC-AUC with which the score tells shifted batches from clean ones:

  - ``slope_gradient``: the gradient of the mean prediction entropy over the batch with
    respect to the layer's PReLU slopes (the first step of fine-tuning the slopes alone
    on the unlabelled batch, the label-free, one-step counterpart of ``slope_drift``);
  - ``skewness``: the per-channel skewness of the layer's pre-activations over the
    batch (the plain baseline; see
    :func:`~gnnleaky.analysis.preactivation_skewness`);
  - ``mean``: the per-channel mean of the layer's pre-activations over the batch (the
    plainest statistic, a second baseline).

* :func:`shift_sensor`: trains PReLU models on a graph over several seeds and runs
  :func:`shift_detection` on each, as measured in ``docs/theory.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from gnnleaky._validation import check_graph
from gnnleaky.analysis._common import check_finite, check_positive_int, eval_mode, seeded
from gnnleaky.nn.activation import slope_parameters

__all__ = ["DETECTORS", "SHIFTS", "shift_detection", "shift_features", "shift_sensor"]

#: Feature shifts of :func:`shift_features`.
SHIFTS: tuple[str, ...] = ("mean", "scale", "drop")
#: Statistics of :func:`shift_detection`.
DETECTORS: tuple[str, ...] = ("slope_gradient", "skewness", "mean")


def _size(kind: str, size: Any) -> float:
    s = check_finite("size", size, minimum=0.0)
    if kind == "drop" and s > 1:
        raise ValueError(f'size of a "drop" shift is a share of columns in [0, 1], got {size!r}')
    return s


def _kind(kind: Any) -> str:
    if kind not in SHIFTS:
        raise ValueError(f"kind must be one of {list(SHIFTS)}, got {kind!r}")
    return kind


def shift_features(x: Tensor, kind: str, size: float, *, seed: int = 0) -> Tensor:
    r"""Node features after a shift of the given kind and size.

    .. math::
        \text{mean:}\; X + s\,\mathbf 1\sigma^\top, \qquad
        \text{scale:}\; (1 + s)\,X, \qquad
        \text{drop:}\; X\,\mathrm{diag}(m),\; m_c = 0 \text{ for } \lfloor sF + 1/2
        \rfloor \text{ columns}

    with :math:`\sigma` the columns' standard deviations over the nodes; the dropped
    columns are drawn by ``torch.randperm`` under ``seed``. Size 0 returns an unchanged
    copy for every kind.

    Args:
        x (Tensor): Node features ``[N, F]``.
        kind (str): ``"mean"``, ``"scale"`` or ``"drop"``.
        size (float): :math:`s \ge 0` (``"drop"``: a share in :math:`[0, 1]`).
        seed (int, optional): Seed of the dropped columns. (default: ``0``)

    Example:
        >>> x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
        >>> shift_features(x, "scale", 0.5).tolist()
        [[0.0, 1.5], [3.0, 4.5]]
        >>> shift_features(x, "drop", 1.0).abs().sum().item()
        0.0
    """
    from gnnleaky._validation import check_features

    check_features(x)
    kind = _kind(kind)
    s = _size(kind, size)
    if kind == "mean":
        return x + s * x.std(0, correction=0)
    if kind == "scale":
        return x * (1.0 + s)
    n_drop = math.floor(s * x.size(1) + 0.5)
    with seeded(seed):
        cols = torch.randperm(x.size(1))[:n_drop]
    out = x.clone()
    out[:, cols] = 0.0
    return out


def _layer_slopes(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    if not hasattr(model, "acts") or not hasattr(model, "num_activations"):
        raise ValueError(f"model must be a LeakyGNN (with .acts), got {type(model).__name__}")
    params = [slope_parameters(model.acts[i]) for i in range(model.num_activations)]
    if not params or any(not p for p in params):
        raise ValueError(
            "model must have a PReLU (act='prelu') after every activated layer: the "
            "slope gradient needs learned slopes"
        )
    return params


def _auc(clean: Tensor, shifted: Tensor) -> float:
    # P(score of a shifted batch > score of a clean one), ties counted 1/2 (Mann-Whitney)
    diff = shifted.view(-1, 1) - clean.view(1, -1)
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def _skew_channels(z: Tensor) -> Tensor:
    d = z - z.mean(0)
    m2, m3 = d.pow(2).mean(0), d.pow(3).mean(0)
    return torch.where(m2 > 0, m3 / m2.clamp_min(1e-300).pow(1.5), torch.zeros_like(m2))


def _batch_statistics(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None,
    batches: Tensor,
    params: list[list[torch.nn.Parameter]],
) -> dict[str, list[Tensor]]:
    """Per detector and layer, the statistic of every batch: ``[B, C_l]``."""
    flat = [p for ps in params for p in ps]
    with eval_mode(model), torch.enable_grad():
        out, hidden = model.forward_hidden(x.double(), edge_index, edge_weight)
        logp = torch.log_softmax(out, dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)
        grads: list[list[Tensor]] = [[] for _ in params]
        for b in range(batches.size(0)):
            g = torch.autograd.grad(entropy[batches[b]].mean(), flat, retain_graph=True)
            k = 0
            for layer, ps in enumerate(params):
                grads[layer].append(torch.cat([gi.reshape(-1) for gi in g[k : k + len(ps)]]))
                k += len(ps)
    pre = [h.detach() for h in hidden.pre[: len(params)]]
    return {
        "slope_gradient": [torch.stack(g) for g in grads],
        "skewness": [torch.stack([_skew_channels(z[idx]) for idx in batches]) for z in pre],
        "mean": [torch.stack([z[idx].mean(0) for idx in batches]) for z in pre],
    }


def _scores(stat: Tensor, ref: Tensor) -> Tensor:
    # RMS over channels of the z-score against the clean reference batches
    # a channel that does not vary over the reference batches (beyond float64 rounding of
    # a sum taken in another order) carries no evidence and is left out (score 0)
    mu, sd = ref.mean(0), ref.std(0)
    varies = sd > 1e-10 * mu.abs()
    z = (stat - mu) / torch.where(varies, sd, torch.ones_like(sd))
    z = torch.where(varies, z, torch.zeros_like(z))
    return z.pow(2).mean(1).sqrt()


def _check_shifts(shifts: Mapping[str, Iterable[float]]) -> dict[str, list[float]]:
    if not isinstance(shifts, Mapping) or not shifts:
        raise ValueError(
            f"shifts must be a non-empty mapping kind -> sizes (kinds {list(SHIFTS)}), "
            f"got {shifts!r}"
        )
    out = {}
    for kind, sizes in shifts.items():
        _kind(kind)
        try:
            values = list(sizes)
        except TypeError:
            raise ValueError(
                f"shifts[{kind!r}] must be a sequence of sizes, got {sizes!r}"
            ) from None
        if not values:
            raise ValueError(f"shifts[{kind!r}] must hold at least one size")
        for v in values:
            try:
                _size(kind, v)
            except ValueError:
                bound = "[0, 1]" if kind == "drop" else ">= 0"
                raise ValueError(
                    f"shifts[{kind!r}] sizes must be finite floats {bound}, got {v!r}"
                ) from None
        out[kind] = [float(v) for v in values]
    return out


def shift_detection(
    model: torch.nn.Module,
    data: Any,
    shifts: Mapping[str, Sequence[float]],
    *,
    num_batches: int = 50,
    batch_size: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Detection AUC of a feature shift, per layer, from the slope gradient and from
    pre-activation statistics (skewness, mean).

    A *batch* is a random set of ``batch_size`` nodes; the model runs on the whole graph
    (clean :math:`X` or shifted :math:`X'`, see :func:`shift_features`) in eval mode and
    each statistic is computed over the batch's nodes. Per activated layer
    :math:`\ell` with channels :math:`c`:

    .. math::
        g_{\ell c}(B) = \frac{\partial}{\partial \alpha_{\ell c}}
        \frac{1}{|B|}\sum_{i \in B} H\big(\mathrm{softmax}(f(X)_i)\big), \qquad
        \gamma_{\ell c}(B) = \mathrm{skew}\{z^{(\ell)}_{ic} : i \in B\}, \qquad
        m_{\ell c}(B) = \frac{1}{|B|}\sum_{i \in B} z^{(\ell)}_{ic},

    the slope gradient of the mean prediction entropy (label-free; one SGD step on the
    slopes alone would move them by :math:`-\eta g`), the skewness and the mean of the
    pre-activations. Each statistic :math:`T(B) \in \mathbb R^{C_\ell}` is scored
    against ``num_batches`` clean *reference* batches by the RMS z-score
    :math:`s(B) = \| (T(B) - \hat\mu) / \hat\sigma \|_2 / \sqrt{C_\ell}`; the AUC is
    :math:`P(s(B') > s(B)) + \tfrac12 P(s(B') = s(B))` over ``num_batches`` shifted
    batches :math:`B'` and as many fresh clean batches :math:`B` (the Mann-Whitney
    statistic). All three batch sets are drawn independently, so a shift of size 0 gives
    an AUC of 1/2 up to sampling noise (standard error about
    :math:`\sqrt{(2n + 1)/(12 n^2)}`, 0.058 for :math:`n = 50`) for both detectors.

    Args:
        model (LeakyGNN): A trained model with a PReLU after every activated layer
            (layer- or channel-wise; for a bounded PReLU the gradient is taken with
            respect to its free parameters); run in float64 on a copy of its weights.
        data (Data): ``x`` and ``edge_index`` (``edge_weight`` used when present).
        shifts (dict): ``kind -> sizes``, e.g. ``{"mean": [0, 0.5], "drop": [0.1]}``.
        num_batches (int, optional): Batches per set (reference, clean, each shift).
            (default: ``50``)
        batch_size (int, optional): Nodes per batch, at most ``N``. (default:
            ``min(256, N)``)
        seed (int, optional): Seed of the batches and the dropped columns.
            (default: ``0``)

    Returns:
        DataFrame, one row per (kind, size, layer, detector): ``kind``, ``size``,
        ``layer``, ``detector``, ``auc``, ``score_clean`` and ``score_shifted`` (mean
        scores), and ``mean_statistic`` (the statistic's mean over the shifted batches
        and the channels: for ``slope_gradient`` the slope response).

    Example:
        >>> from gnnleaky.datasets import load
        >>> from gnnleaky.nn import GCN
        >>> data = load("csbm", num_nodes=100, num_features=8, seed=0)
        >>> model = GCN(8, 8, 2, 2, act="prelu")
        >>> df = shift_detection(model, data, {"mean": [0.0]}, num_batches=5, batch_size=20)
        >>> df[["kind", "layer", "detector"]].values.tolist()
        [['mean', 0, 'slope_gradient'], ['mean', 0, 'skewness'], ['mean', 0, 'mean']]
    """
    for key in ("x", "edge_index"):
        if getattr(data, key, None) is None:
            raise ValueError(f"data must have '{key}' (a PyG Data)")
    edge_weight = getattr(data, "edge_weight", None)
    check_graph(data.x, data.edge_index, edge_weight)
    sizes = _check_shifts(shifts)
    params_model = _layer_slopes(model)
    nb = check_positive_int("num_batches", num_batches, minimum=2)
    n = data.x.size(0)
    bs = min(256, n) if batch_size is None else batch_size
    bs = check_positive_int("batch_size", bs, minimum=2)
    if bs > n:
        raise ValueError(f"batch_size must be <= the number of nodes ({n}), got {batch_size}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    import copy

    work = copy.deepcopy(model).double()
    params = _layer_slopes(work)
    del params_model
    x = data.x.double()
    ew = None if edge_weight is None else edge_weight.double()

    def draw(count: int) -> Tensor:
        return torch.stack([torch.randperm(n)[:bs] for _ in range(count)])

    with seeded(seed):
        ref_batches, clean_batches = draw(nb), draw(nb)
        shift_batches = {(k, s): draw(nb) for k, ss in sizes.items() for s in ss}
    both = torch.cat([ref_batches, clean_batches])
    clean_stats = _batch_statistics(work, x, data.edge_index, ew, both, params)
    rows = []
    for (kind, s), batches in shift_batches.items():
        x_s = shift_features(x, kind, s, seed=seed)
        stats = _batch_statistics(work, x_s, data.edge_index, ew, batches, params)
        for layer in range(len(params)):
            for det in DETECTORS:
                ref, clean = clean_stats[det][layer][:nb], clean_stats[det][layer][nb:]
                shifted = stats[det][layer]
                s_clean, s_shift = _scores(clean, ref), _scores(shifted, ref)
                rows.append(
                    {
                        "kind": kind,
                        "size": s,
                        "layer": layer,
                        "detector": det,
                        "auc": _auc(s_clean, s_shift),
                        "score_clean": float(s_clean.mean()),
                        "score_shifted": float(s_shift.mean()),
                        "mean_statistic": float(shifted.mean()),
                    }
                )
    return pd.DataFrame(rows)


def shift_sensor(
    data: Any,
    shifts: Mapping[str, Sequence[float]],
    *,
    seeds: Iterable[int] = (0, 1, 2),
    hidden_channels: int = 64,
    num_layers: int = 3,
    mode: str = "channel",
    epochs: int = 200,
    num_batches: int = 50,
    batch_size: int | None = None,
) -> pd.DataFrame:
    r"""Train a PReLU GCN per seed and measure :func:`shift_detection` on it.

    The model is :class:`gnnleaky.nn.GCN` (``num_layers`` layers, ``hidden_channels``
    wide, PReLU of ``mode`` initialized at 0.25 after every layer but the last, dropout
    0.5) trained by :func:`~gnnleaky.analysis.fit_node_classifier` (Adam, lr 0.01,
    weight decay 5e-4 off the slopes, the best-validation epoch restored) on ``data``'s
    first split, initialized and trained under the seed, which also draws the batches.

    Args:
        data (Data): A graph with split masks (``[N]``, or ``[N, S]``: column 0 used).
        shifts (dict): ``kind -> sizes`` (see :func:`shift_detection`).
        seeds (sequence of int, optional): (default: ``(0, 1, 2)``)
        hidden_channels, num_layers (int, optional): (defaults: ``64``, ``3``)
        mode (str, optional): PReLU ``"layer"`` or ``"channel"``. (default: ``"channel"``)
        epochs (int, optional): Training epochs. (default: ``200``)
        num_batches, batch_size (int, optional): See :func:`shift_detection`.

    Returns:
        The rows of :func:`shift_detection` with ``seed`` and the trained model's
        ``test_acc`` (on the clean graph).
    """
    from gnnleaky.analysis.training import accuracy, fit_node_classifier
    from gnnleaky.nn import GCN

    seeds_ = list(seeds)
    if not seeds_ or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds_):
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    _check_shifts(shifts)
    if mode not in ("layer", "channel"):
        raise ValueError(f"mode must be one of ['channel', 'layer'], got {mode!r}")
    check_positive_int("num_layers", num_layers, minimum=2)
    d = _first_split(data)
    frames = []
    for seed in seeds_:
        with seeded(seed):
            model = GCN(
                d.num_features,
                hidden_channels,
                num_layers,
                int(d.y.max()) + 1,
                dropout=0.5,
                act="prelu",
                act_kwargs={"mode": mode, "init": 0.25},
            )
        fit_node_classifier(model, d, epochs=epochs, seed=seed)
        acc = accuracy(model, d)["test_acc"]
        frame = shift_detection(
            model, d, shifts, num_batches=num_batches, batch_size=batch_size, seed=seed
        )
        frame.insert(0, "seed", seed)
        frame["test_acc"] = acc
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _first_split(data: Any) -> Any:
    """A copy of ``data`` whose masks are their first column (1-D)."""
    d = data.clone()
    for key in ("train_mask", "val_mask", "test_mask"):
        mask = getattr(d, key, None)
        if mask is None:
            raise ValueError(f"data must have '{key}' (a PyG Data with split masks)")
        if mask.dim() == 2:
            setattr(d, key, mask[:, 0])
    return d
