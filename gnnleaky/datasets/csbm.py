r"""The contextual stochastic block model (cSBM): :func:`make_csbm`, generated in code, and
the ``synthetic`` family that serves it through :func:`~gnnleaky.datasets.load` as ``csbm``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from gnnleaky.datasets.family import Family
from gnnleaky.datasets.registry import DatasetSpec

__all__ = ["SYNTHETIC", "make_csbm", "require_int"]


def _pairs_in_class(sizes: np.ndarray) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def _sample_pairs(
    rng: np.random.Generator,
    k: int,
    n: int,
    same: bool,
    order: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    r"""Draws :obj:`k` distinct unordered node pairs, uniformly among same-class
    (:obj:`same=True`) or different-class pairs; returns keys ``u * n + v`` with ``u < v``."""
    if k == 0:
        return np.empty(0, dtype=np.int64)
    total = _pairs_in_class(sizes) if same else n * (n - 1) // 2 - _pairs_in_class(sizes)
    if 4 * k >= total:  # dense: enumerate every candidate pair, choose without replacement
        if same:
            parts = []
            for c in range(sizes.size):
                members = np.sort(order[starts[c] : starts[c] + sizes[c]])
                iu, iv = np.triu_indices(members.size, 1)
                parts.append(members[iu].astype(np.int64) * n + members[iv])
            cand = np.concatenate(parts)
        else:
            iu, iv = np.triu_indices(n, 1)
            keep = y[iu] != y[iv]
            cand = iu[keep].astype(np.int64) * n + iv[keep]
        return np.sort(rng.choice(cand, size=k, replace=False))

    weights = sizes * (sizes - 1.0) if same else sizes * (n - sizes.astype(np.float64))
    weights = weights / weights.sum()
    keys = np.empty(0, dtype=np.int64)
    while keys.size < k:  # sparse: draw the deficit, drop duplicates, repeat (few rounds)
        m = k - keys.size
        c = rng.choice(sizes.size, size=m, p=weights)
        nc = sizes[c]
        a = np.floor(rng.random(m) * nc).astype(np.int64)
        u = order[starts[c] + a]
        if same:
            b = np.floor(rng.random(m) * (nc - 1)).astype(np.int64)
            b += b >= a
            v = order[starts[c] + b]
        else:
            r = np.floor(rng.random(m) * (n - nc)).astype(np.int64)
            r += np.where(r >= starts[c], nc, 0)  # skip the block of u's own class
            v = order[r]
        lo, hi = np.minimum(u, v).astype(np.int64), np.maximum(u, v).astype(np.int64)
        keys = np.concatenate([keys, lo * n + hi])
        keys.sort()  # sort + neighbour test: much faster than np.unique (hash-based) here
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return keys


def make_csbm(
    num_nodes: int = 1000,
    num_classes: int = 2,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    snr: float = 1.0,
    num_features: int = 16,
    seed: int = 0,
    num_splits: int = 10,
    train_ratio: float = 0.6,
    val_ratio: float = 0.2,
) -> Data:
    r"""Generates a contextual stochastic block model (cSBM) graph with split masks.

    Labels are balanced (class sizes differ by at most one) and randomly placed.
    With :math:`M = \mathrm{round}(N d / 2)` undirected edges for average degree
    :math:`d`, exactly :math:`M_{\mathrm{same}} = \mathrm{round}(h M)` of them join
    nodes of the same class and :math:`M - M_{\mathrm{same}}` join different
    classes, each set drawn uniformly without replacement among such pairs (an
    SBM conditioned on its edge counts). So the edge homophily is :math:`h` up to
    rounding:

    .. math::
        h_{\mathrm{edge}} = \frac{|\{(i, j) \in \mathcal{E} : y_i = y_j\}|}{|\mathcal{E}|}
        = \frac{M_{\mathrm{same}}}{M}, \qquad |h_{\mathrm{edge}} - h| \le \frac{1}{2M}.

    Features are Gaussian around orthogonal class means at equal distance
    :math:`\mathrm{snr}` (in units of the noise standard deviation
    :math:`\sigma = 1`):

    .. math::
        \mathbf{x}_i = \boldsymbol{\mu}_{y_i} + \boldsymbol{\varepsilon}_i, \quad
        \boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_F), \quad
        \boldsymbol{\mu}_c = \frac{\mathrm{snr}}{\sqrt{2}} \mathbf{u}_c, \quad
        \mathrm{snr} = \frac{\|\boldsymbol{\mu}_a - \boldsymbol{\mu}_b\|_2}{\sigma}
        \ (a \neq b),

    where :math:`\mathbf{u}_1, \dots, \mathbf{u}_C` are orthonormal (QR of a
    Gaussian :math:`F \times C` matrix). For two classes, projecting onto
    :math:`\boldsymbol{\mu}_1 - \boldsymbol{\mu}_0` gives the Bayes accuracy from
    features alone, :math:`\Phi(\mathrm{snr} / 2)`.

    Splits are :obj:`num_splits` random stratified splits: in each class,
    :math:`\mathrm{round}(\text{train\_ratio} \cdot n_c)` nodes train,
    :math:`\mathrm{round}(\text{val\_ratio} \cdot n_c)` validate, the rest test.
    Everything is deterministic given :obj:`seed` (one
    :class:`numpy.random.Generator`; no global random state). Edges are stored
    in both directions, sorted, without self-loops or duplicates; generation is
    vectorised (a :math:`10^6`-node graph of average degree 15 takes seconds).

    Args:
        num_nodes (int, optional): Number of nodes :math:`N`. (default: :obj:`1000`)
        num_classes (int, optional): Number of classes :math:`C \ge 2`. (default: :obj:`2`)
        avg_degree (float, optional): Average degree :math:`d`. (default: :obj:`10.0`)
        homophily (float, optional): Edge homophily :math:`h \in [0, 1]`. (default: :obj:`0.8`)
        snr (float, optional): Distance between class means over noise std,
            :math:`\ge 0`. (default: :obj:`1.0`)
        num_features (int, optional): Feature dimension :math:`F \ge C`. (default: :obj:`16`)
        seed (int, optional): Random seed. (default: :obj:`0`)
        num_splits (int, optional): Number of splits (masks :obj:`[N]` if 1, else
            :obj:`[N, num_splits]`). (default: :obj:`10`)
        train_ratio (float, optional): Training fraction per class. (default: :obj:`0.6`)
        val_ratio (float, optional): Validation fraction per class; the test
            fraction is the rest, which must be positive. (default: :obj:`0.2`)

    Shapes:
        - **output:** ``x`` :math:`(N, F)` float32, ``edge_index`` :math:`(2, 2M)`,
          ``y`` :math:`(N)`, masks :math:`(N)` or :math:`(N, S)` bool.

    Example:
        >>> from torch_geometric.utils import homophily
        >>> data = make_csbm(num_nodes=1000, num_classes=3, avg_degree=6, homophily=0.3, seed=1)
        >>> tuple(data.x.shape), tuple(data.edge_index.shape), tuple(data.train_mask.shape)
        ((1000, 16), (2, 6000), (1000, 10))
        >>> round(homophily(data.edge_index, data.y), 6)
        0.3
        >>> data.is_undirected(), data.has_self_loops()
        (True, False)
    """
    require_int("num_nodes", num_nodes, 1)
    require_int("num_classes", num_classes, 2)
    require_int(
        "num_features",
        num_features,
        num_classes,
        "(class means are orthogonal, so num_features >= num_classes)",
    )
    require_int("num_splits", num_splits, 1)
    require_int("seed", seed, 0)
    if num_nodes < num_classes:
        raise ValueError(f"num_nodes={num_nodes} must be >= num_classes={num_classes}")
    for arg, value, lo, hi in (
        ("homophily", homophily, 0.0, 1.0),
        ("train_ratio", train_ratio, 0.0, 1.0),
        ("val_ratio", val_ratio, 0.0, 1.0),
    ):
        if not (isinstance(value, (int, float)) and lo <= value <= hi):
            raise ValueError(f"{arg}={value!r} must be a number in [{lo}, {hi}]")
    if train_ratio + val_ratio >= 1.0:
        raise ValueError(
            f"train_ratio + val_ratio = {train_ratio + val_ratio} must be < 1 "
            f"(the rest is the test set)"
        )
    for arg, value in (("avg_degree", avg_degree), ("snr", snr)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{arg}={value!r} must be a finite number >= 0")

    n, c = int(num_nodes), int(num_classes)
    rng = np.random.default_rng(seed)
    sizes = np.full(c, n // c, dtype=np.int64)
    sizes[: n % c] += 1
    y = np.repeat(np.arange(c, dtype=np.int64), sizes)
    rng.shuffle(y)
    order = np.argsort(y, kind="stable")  # nodes grouped by class
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    m = round(n * avg_degree / 2)
    m_same = round(homophily * m)
    m_diff = m - m_same
    cap_same = _pairs_in_class(sizes)
    cap_diff = n * (n - 1) // 2 - cap_same
    if m_same > cap_same or m_diff > cap_diff:
        raise ValueError(
            f"avg_degree={avg_degree} with homophily={homophily} needs {m_same} same-class and "
            f"{m_diff} different-class edges, but only {cap_same} and {cap_diff} pairs exist "
            f"for num_nodes={n}, num_classes={c}; lower avg_degree"
        )
    keys = np.concatenate(
        [
            _sample_pairs(rng, m_same, n, True, order, starts, sizes, y),
            _sample_pairs(rng, m_diff, n, False, order, starts, sizes, y),
        ]
    )
    u, v = keys // n, keys % n
    both = np.concatenate([u * n + v, v * n + u])
    both.sort()
    pairs = np.empty((2, both.size), dtype=np.int64)
    np.floor_divide(both, n, out=pairs[0])
    np.subtract(both, pairs[0] * n, out=pairs[1])
    del both
    edge_index = torch.from_numpy(pairs)

    directions, _ = np.linalg.qr(rng.standard_normal((num_features, c)))  # (F, C), orthonormal
    means = (snr / math.sqrt(2.0)) * directions.T
    x = rng.standard_normal((n, num_features), dtype=np.float32)
    x += means.astype(np.float32)[y]

    n_train = np.rint(train_ratio * sizes).astype(np.int64)
    n_val = np.rint(val_ratio * sizes).astype(np.int64)
    masks = np.zeros((3, n, num_splits), dtype=bool)
    for s in range(num_splits):
        # by class, in random order within a class (integer keys: no float rounding across classes)
        perm = np.argsort((y << 32) + rng.integers(0, 1 << 32, size=n, dtype=np.int64))
        rank = np.empty(n, dtype=np.int64)
        rank[perm] = np.arange(n) - starts[y[perm]]
        masks[0, :, s] = rank < n_train[y]
        masks[1, :, s] = (rank >= n_train[y]) & (rank < n_train[y] + n_val[y])
        masks[2, :, s] = rank >= n_train[y] + n_val[y]
    mask_t = torch.from_numpy(masks)
    if num_splits == 1:
        mask_t = mask_t[..., 0]

    data = Data(
        x=torch.from_numpy(x),
        edge_index=edge_index,
        y=torch.from_numpy(y),
        train_mask=mask_t[0],
        val_mask=mask_t[1],
        test_mask=mask_t[2],
    )
    data.num_classes = c
    data.name = "csbm"
    return data


def require_int(arg: str, value: Any, minimum: int, note: str = "") -> None:
    r"""Raises :class:`ValueError` naming :obj:`arg` unless :obj:`value` is an integer (not a
    bool) of at least :obj:`minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{arg}={value!r} must be an integer >= {minimum} {note}".rstrip())


def _build(spec: DatasetSpec, root: Path, split: str, force_reload: bool, **kwargs: Any) -> Data:
    return make_csbm(**kwargs)


SYNTHETIC = Family(
    "gnnleaky.datasets.make_csbm",
    None,
    lambda s, split: (),
    "",
    _build,
    (  # the parameters of make_csbm
        "num_nodes",
        "num_classes",
        "avg_degree",
        "homophily",
        "snr",
        "num_features",
        "seed",
        "num_splits",
        "train_ratio",
        "val_ratio",
    ),
)
