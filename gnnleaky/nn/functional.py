r"""The normalized graph operator: one builder, one cache key.

Every part of gnnleaky that propagates with the GCN operator (the layers, the stacked
engine, the analyses, the spectral tools) builds it here, through PyG's
:func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`, and caches it under a
:class:`TensorKey`: the tensors themselves and their ``_version`` counters, never their
addresses (a freed graph's memory can hold the next graph; an in-place edit bumps the
version).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm

__all__ = ["OperatorCache", "TensorKey", "gcn_operator", "normalized_adjacency"]


class TensorKey:
    """Identity and version of some tensors (``None`` allowed) plus plain extras.

    Two keys match only for the very same tensor objects, unmodified in place since the
    key was made, with equal extras. The key holds the tensors, so their memory cannot be
    reused by another tensor while it lives.

    Example:
        >>> a = torch.zeros(3)
        >>> key = TensorKey(a, None, extra=(3,))
        >>> key.matches(a, None, extra=(3,)), key.matches(a.clone(), None, extra=(3,))
        (True, False)
        >>> _ = a.add_(1)  # in-place edit
        >>> key.matches(a, None, extra=(3,))
        False
    """

    __slots__ = ("extra", "tensors", "versions")

    def __init__(self, *tensors: Tensor | None, extra: tuple = ()) -> None:
        self.tensors = tensors
        self.versions = tuple(None if t is None else t._version for t in tensors)
        self.extra = extra

    def matches(self, *tensors: Tensor | None, extra: tuple = ()) -> bool:
        """Whether ``tensors`` and ``extra`` are what this key was made from."""
        return (
            len(tensors) == len(self.tensors)
            and all(a is b for a, b in zip(tensors, self.tensors))
            and all(v is None or t._version == v for t, v in zip(tensors, self.versions))
            and extra == self.extra
        )


class OperatorCache:
    """The last value built for one graph, rebuilt whenever the key changes.

    Example:
        >>> cache = OperatorCache()
        >>> ei = torch.tensor([[0, 1], [1, 0]])
        >>> calls = []
        >>> build = lambda: calls.append(1) or "built"
        >>> cache.get(build, ei, extra=(2,)), cache.get(build, ei, extra=(2,)), len(calls)
        ('built', 'built', 1)
    """

    __slots__ = ("key", "value")

    def __init__(self) -> None:
        self.key: TensorKey | None = None
        self.value: Any = None

    def get(self, build: Callable[[], Any], *tensors: Tensor | None, extra: tuple = ()) -> Any:
        """The cached value for these tensors, or ``build()`` (then cached)."""
        if self.key is None or not self.key.matches(*tensors, extra=extra):
            self.value = build()
            self.key = TensorKey(*tensors, extra=extra)
        return self.value

    def clear(self) -> None:
        """Forget the cached value (and release the tensors the key holds)."""
        self.key = None
        self.value = None

    # A cache is derived state: a copy or a pickle of it starts empty (and rebuilds).
    def __deepcopy__(self, memo: dict) -> OperatorCache:
        return OperatorCache()

    def __getstate__(self) -> tuple:
        return (None, None)

    def __setstate__(self, state: tuple) -> None:
        self.key, self.value = None, None


def gcn_operator(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    *,
    add_self_loops: bool = True,
    improved: bool = False,
    flow: str = "source_to_target",
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    r"""The GCN operator as ``(edge_index, edge_weight)``: PyG's ``gcn_norm``.

    .. math::
        \hat{\mathbf{A}} = \hat{\mathbf{D}}^{-1/2}(\mathbf{A} + \mathbf{I})
        \hat{\mathbf{D}}^{-1/2}

    (without :math:`\mathbf{I}` when ``add_self_loops=False``; ``2 \mathbf{I}`` with
    ``improved=True``), exactly what :class:`~torch_geometric.nn.conv.GCNConv` computes.

    Args:
        edge_index (torch.Tensor): Edge indices ``[2, E]``.
        edge_weight (torch.Tensor, optional): Edge weights ``[E]``. (default: ``None``)
        num_nodes (int, optional): Number of nodes. (default: ``max index + 1``)
        add_self_loops (bool, optional): Add self-loops. (default: ``True``)
        improved (bool, optional): Self-loops of weight 2. (default: ``False``)
        flow (str, optional): Message direction, as in PyG. (default: ``"source_to_target"``)
        dtype (torch.dtype, optional): Weight dtype. (default: the default dtype)

    Example:
        >>> ei, ew = gcn_operator(torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
        >>> [round(w, 6) for w in ew.tolist()]
        [0.5, 0.5, 0.5, 0.5]
    """
    ei, ew = gcn_norm(edge_index, edge_weight, num_nodes, improved, add_self_loops, flow, dtype)
    return ei, ew


def normalized_adjacency(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    r"""The GCN operator :math:`\hat{\mathbf{A}}` and its transpose as CSR matrices.

    .. math::
        (\hat{\mathbf{A}}\mathbf{H})_i = \sum_{(j, i) \in \mathcal{E}}
        \hat{a}_{ij} \mathbf{h}_j

    built by :func:`gcn_operator` with self-loops, so ``A @ H`` equals one GCN
    propagation (messages flow from ``edge_index[0]`` to ``edge_index[1]``; duplicate
    edges add up).

    Args:
        edge_index (torch.Tensor): Edge indices ``[2, E]``.
        edge_weight (torch.Tensor, optional): Edge weights ``[E]``. (default: ``None``)
        num_nodes (int, optional): Number of nodes. (default: ``max index + 1``)
        dtype (torch.dtype, optional): Value dtype. (default: ``edge_weight``'s dtype, else
            the default dtype)

    Shapes:
        - **output:** two sparse CSR tensors :math:`(N, N)`: :math:`\hat{\mathbf{A}}`
          and :math:`\hat{\mathbf{A}}^\top`

    Example:
        >>> a, a_t = normalized_adjacency(torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
        >>> a.to_dense()
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
    """
    from gnnleaky._validation import check_edge_index, check_edge_weight

    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    check_edge_index(edge_index, num_nodes)
    check_edge_weight(edge_weight, edge_index.size(1))
    if dtype is None:
        dtype = edge_weight.dtype if edge_weight is not None else torch.get_default_dtype()
    ei, ew = gcn_operator(edge_index, edge_weight, num_nodes, dtype=dtype)
    ew = ew.to(dtype)
    size = (num_nodes, num_nodes)
    with warnings.catch_warnings():  # "CSR support is in beta" is not news to the caller
        warnings.simplefilter("ignore", UserWarning)
        a = torch.sparse_coo_tensor(ei.flip(0), ew, size, check_invariants=False)
        a_t = torch.sparse_coo_tensor(ei, ew, size, check_invariants=False)
        return a.coalesce().to_sparse_csr(), a_t.coalesce().to_sparse_csr()
