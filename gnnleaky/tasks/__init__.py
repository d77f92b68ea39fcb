"""What a run optimizes: each task is a loss and an evaluation on top of
:func:`gnnleaky.train.fit`.

* :class:`NodeClassification` (the default): cross-entropy on the training nodes (binary
  cross-entropy per task for multilabel data), scored by the dataset's official metric.
"""

from gnnleaky.tasks.node_classification import NodeClassification

__all__ = ["NodeClassification"]
