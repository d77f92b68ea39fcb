"""The engine: K same-shape models trained in one pass (:class:`StackedGNN`), with seeded
per-model dropout and a fused CPU path behind it.

Where it applies (float32 on the CPU, GCN models without norms or jumping knowledge), a
stack of K models computes what the K models compute one by one, faster.
"""

from gnnleaky.engine.dropout import SeededDropout, dropout_mask
from gnnleaky.engine.fast import model_threads
from gnnleaky.engine.stacked import SPARSE_FEATURE_DENSITY, STACKABLE_CONVS, StackedGNN

__all__ = [
    "SPARSE_FEATURE_DENSITY",
    "STACKABLE_CONVS",
    "SeededDropout",
    "StackedGNN",
    "dropout_mask",
    "model_threads",
]
