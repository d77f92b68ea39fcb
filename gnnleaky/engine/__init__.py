"""The engine: K same-shape models trained in one pass (:class:`StackedGNN`), one model in
a user's own loop (:func:`accelerate`), with seeded per-model dropout and a fused CPU path
behind both.

Where it applies (float32 on the CPU, GCN models without norms or jumping knowledge), the
engine computes what the models compute one by one, faster.
"""

from gnnleaky.engine.accelerate import AcceleratedGCN, accelerate
from gnnleaky.engine.dropout import SeededDropout, dropout_mask
from gnnleaky.engine.fast import model_threads
from gnnleaky.engine.stacked import SPARSE_FEATURE_DENSITY, STACKABLE_CONVS, StackedGNN

__all__ = [
    "SPARSE_FEATURE_DENSITY",
    "STACKABLE_CONVS",
    "AcceleratedGCN",
    "SeededDropout",
    "StackedGNN",
    "accelerate",
    "dropout_mask",
    "model_threads",
]
