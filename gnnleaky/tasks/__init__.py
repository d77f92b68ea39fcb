"""What a run optimizes: each task is a loss and an evaluation on top of
:func:`gnnleaky.train.fit`.

* :class:`NodeClassification` (the default): cross-entropy on the training nodes (binary
  cross-entropy per task for multilabel data), scored by the dataset's official metric.
* :class:`LinkPrediction`: a graph autoencoder (inner-product decoder) on a random edge
  split, scored by ROC-AUC and average precision.
* :class:`Contrastive`: GRACE-style contrastive learning of two augmented views (NT-Xent),
  evaluated by a linear probe on the frozen embeddings.
* :class:`DomainAdversarial` (:mod:`~gnnleaky.tasks.domain_adversarial`): DANN, a labelled
  source graph and an unlabelled target, a gradient reversal layer between the GNN
  extractor and a domain discriminator.
* :class:`ContinualStep` (:mod:`~gnnleaky.tasks.continual`): one task of a class- or
  task-incremental sequence (fine-tuning or EWC), with CGLB's AP and AF.
"""

from gnnleaky.tasks.continual import ContinualStep
from gnnleaky.tasks.contrastive import GRACE, Contrastive, nt_xent
from gnnleaky.tasks.domain_adversarial import DomainAdversarial
from gnnleaky.tasks.link_prediction import LinkPrediction, link_scores, link_split
from gnnleaky.tasks.node_classification import NodeClassification

__all__ = [
    "GRACE",
    "ContinualStep",
    "Contrastive",
    "DomainAdversarial",
    "LinkPrediction",
    "NodeClassification",
    "link_scores",
    "link_split",
    "nt_xent",
]
