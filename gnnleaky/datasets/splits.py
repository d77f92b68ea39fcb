r"""Random splits with a fixed number of training nodes per class (the label-rate axis)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["RANDOM_SPLIT_TEST", "RANDOM_SPLIT_VAL", "per_class_split"]

#: Validation nodes of a random split (as in the random splits of Kipf & Welling, 2017,
#: and PyG's ``Planetoid(split="random")``), fewer on a small graph (see
#: :func:`per_class_split`).
RANDOM_SPLIT_VAL: int = 500
#: Test nodes of a random split.
RANDOM_SPLIT_TEST: int = 1000


def per_class_split(data: Any, train_per_class: int, seed: int = 0) -> Any:
    r"""A copy of ``data`` with a random split: ``train_per_class`` training nodes drawn
    from each class, then :data:`RANDOM_SPLIT_VAL` validation and
    :data:`RANDOM_SPLIT_TEST` test nodes drawn from the remaining nodes.

    The draw is PyG's :class:`~torch_geometric.transforms.RandomNodeSplit`
    (``split="random"``) under ``torch.manual_seed(seed)`` inside a forked RNG (the
    caller's random state is untouched): the same ``seed`` gives the same split, and
    splits of different label rates are drawn independently. On a graph with fewer than
    ``train_per_class * C + 1500`` nodes the remaining nodes are shared one third to
    validation and two thirds to test. The masks are ``[N]`` booleans (one split).

    Args:
        data (torch_geometric.data.Data): A node-classification graph with integer
            labels ``y`` of shape ``[N]``.
        train_per_class (int): Training nodes per class, >= 1; every class must have
            more nodes than that.
        seed (int, optional): Seed of the draw. (default: ``0``)

    Example:
        >>> from gnnleaky.datasets import load
        >>> data = per_class_split(load("csbm", num_nodes=200, seed=0), 5, seed=1)
        >>> int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())
        (10, 63, 127)
        >>> bool((data.train_mask & data.test_mask).any())
        False
    """
    from torch_geometric.transforms import RandomNodeSplit

    if isinstance(train_per_class, bool) or not isinstance(train_per_class, int):
        raise ValueError(f"train_per_class must be an int >= 1, got {train_per_class!r}")
    if train_per_class < 1:
        raise ValueError(f"train_per_class must be an int >= 1, got {train_per_class!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    y = getattr(data, "y", None)
    if y is None or y.dim() != 1 or y.is_floating_point():
        raise ValueError(
            "data.y must hold one integer class label per node ([N]) for a per-class split"
        )
    counts = torch.bincount(y[y >= 0])
    present = counts[counts > 0]
    if (present <= train_per_class).any():
        raise ValueError(
            f"train_per_class={train_per_class} leaves no node of the smallest class "
            f"({int(present.min())} nodes) for validation and test; allowed: "
            f"1..{int(present.min()) - 1}"
        )
    rest = int(y.numel()) - train_per_class * int(present.numel())
    val = min(RANDOM_SPLIT_VAL, rest // 3)
    test = min(RANDOM_SPLIT_TEST, rest - val)
    out = data.clone()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        out = RandomNodeSplit(
            split="random", num_train_per_class=train_per_class, num_val=val, num_test=test
        )(out)
    return out
