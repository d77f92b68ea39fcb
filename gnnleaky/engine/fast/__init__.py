"""The fast CPU path of the engine: a whole-stack forward and backward in one autograd
node, over fused numba kernels (:mod:`~gnnleaky.engine.fast.kernels`) and torch's dense
products, one model per thread (:mod:`~gnnleaky.engine.fast.threads`)."""

from gnnleaky.engine.fast.path import available, fast_forward, onednn_linear
from gnnleaky.engine.fast.plan import FastGraph, Layout, Workspace
from gnnleaky.engine.fast.threads import flush_denormals, model_threads

__all__ = [
    "FastGraph",
    "Layout",
    "Workspace",
    "available",
    "fast_forward",
    "flush_denormals",
    "model_threads",
    "onednn_linear",
]
