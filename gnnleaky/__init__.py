"""gnnleaky: Leaky ReLU and PReLU GNNs, spectral probes and oversmoothing benchmarks on PyG."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
