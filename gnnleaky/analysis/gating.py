r"""Slope gating: an L1 penalty on channel-wise PReLU slopes turns units into ReLUs.

Training minimizes

.. math::
    \mathcal{L} = \mathrm{CE} + \lambda \sum_{\ell, c} |\alpha_{\ell, c}|,

and counts, for several :math:`\lambda`, how many slopes end within ``tol`` of 0 (units
that behave as ReLUs) and what that costs in accuracy. Adam with an L1 subgradient
does not land slopes on exactly 0 but makes them hover around it at a scale set by
the learning rate, hence the tolerance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import torch

from gnnleaky.analysis._common import check_finite, check_positive_int, seeded
from gnnleaky.analysis.training import _check_data, fit_node_classifier
from gnnleaky.nn.activation import slopes
from gnnleaky.nn.models import LeakyGNN

__all__ = ["slope_gating"]


def _num_classes(data: Any) -> int:
    n = getattr(data, "num_classes", None)
    return int(n) if n is not None else int(data.y.max()) + 1


def slope_gating(
    data: Any,
    lams: Iterable[float] = (0.0, 1e-3, 1e-2, 1e-1),
    *,
    hidden_channels: int = 64,
    num_layers: int = 2,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    dropout: float = 0.5,
    init: float = 0.25,
    tol: float = 1e-2,
    seeds: Iterable[int] = (0,),
    model_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    r"""Train channel-wise PReLU GCNs with an L1 slope penalty at several strengths.

    For every :math:`\lambda` in ``lams`` and every seed, a fresh
    :class:`~gnnleaky.nn.LeakyGNN` (``act="prelu"``, ``mode="channel"``) is trained with
    :func:`~gnnleaky.analysis.fit_node_classifier` (``slope_penalty=lam``) for all
    ``epochs``; slopes and accuracies are those of the final model, so that the count
    and its accuracy cost describe the same weights (restoring an early best-validation
    epoch would report slopes the penalty has not acted on yet).

    Args:
        data (Data): Graph with ``x``, ``edge_index``, ``y`` and 1-D split masks
            (``num_classes`` used when present).
        lams (iterable of float, optional): Penalty strengths :math:`\lambda \ge 0`.
            (default: ``(0, 1e-3, 1e-2, 1e-1)``)
        hidden_channels (int, optional): Hidden width. (default: ``64``)
        num_layers (int, optional): Number of layers. (default: ``2``)
        epochs (int, optional): Training epochs. (default: ``200``)
        lr (float, optional): Learning rate. (default: ``0.01``)
        weight_decay (float, optional): Weight decay (not on slopes).
            (default: ``5e-4``)
        dropout (float, optional): Dropout. (default: ``0.5``)
        init (float, optional): Initial slope. (default: ``0.25``)
        tol (float, optional): A slope with :math:`|\alpha| \le` ``tol`` counts as
            gated (a ReLU unit). (default: ``1e-2``)
        seeds (iterable of int, optional): Seeds of init and dropout. (default: ``(0,)``)
        model_kwargs (dict, optional): Extra :class:`~gnnleaky.nn.LeakyGNN` arguments.

    Returns:
        DataFrame with one row per (lam, seed): ``lam``, ``seed``, ``num_slopes``,
        ``gated``, ``gated_share``, ``mean_abs_slope``, ``train_acc``, ``val_acc``,
        ``test_acc``.

    Example:
        >>> from torch_geometric.data import Data
        >>> m = torch.ones(4, dtype=torch.bool)
        >>> data = Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             y=torch.tensor([0, 1, 0, 1]), train_mask=m, val_mask=m, test_mask=m)
        >>> df = slope_gating(data, lams=[0.0, 1.0], hidden_channels=8, epochs=5)
        >>> df[["lam", "num_slopes"]].values.tolist()
        [[0.0, 8.0], [1.0, 8.0]]
    """
    _check_data(data)
    check_positive_int("hidden_channels", hidden_channels)
    check_positive_int("num_layers", num_layers, minimum=2)
    tol = check_finite("tol", tol, minimum=0.0)
    lams = [check_finite("lams", lam, minimum=0.0) for lam in lams]
    seeds = list(seeds)
    if not lams or not seeds:
        raise ValueError("lams and seeds must not be empty")
    rows = []
    for lam in lams:
        for seed in seeds:
            with seeded(seed):
                model = LeakyGNN(
                    data.num_features,
                    hidden_channels,
                    num_layers,
                    _num_classes(data),
                    dropout=dropout,
                    act="prelu",
                    act_kwargs={"mode": "channel", "init": init},
                    **{"cached": True, **(model_kwargs or {})},
                )
            hist = fit_node_classifier(
                model,
                data,
                epochs=epochs,
                lr=lr,
                weight_decay=weight_decay,
                slope_penalty=lam,
                restore_best=False,
                seed=seed,
            )
            final = hist.iloc[-1]
            alpha = torch.cat([s.detach().flatten() for s in slopes(model).values()])
            gated = int((alpha.abs() <= tol).sum())
            rows.append(
                {
                    "lam": lam,
                    "seed": seed,
                    "num_slopes": alpha.numel(),
                    "gated": gated,
                    "gated_share": gated / alpha.numel(),
                    "mean_abs_slope": float(alpha.abs().mean()),
                    "train_acc": float(final.train_acc),
                    "val_acc": float(final.val_acc),
                    "test_acc": float(final.test_acc),
                }
            )
    return pd.DataFrame(rows)
