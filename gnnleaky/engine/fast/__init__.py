"""The fast CPU path of :class:`~gnnleaky.engine.StackedGNN`: a whole-network forward and
backward over fused numba kernels (:mod:`~gnnleaky.engine.fast.kernels`)."""

from gnnleaky.engine.fast.stack import available, fast_forward, model_threads, onednn_linear

__all__ = ["available", "fast_forward", "model_threads", "onednn_linear"]
