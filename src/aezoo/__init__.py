"""aezoo: a zoo of autoencoders on MNIST, orchestrated with DVC and tracked with MLflow."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) buries the stage
# logs; keep warnings and errors. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow uses oneDNN's CPU kernels by default on Intel CPUs only. Everywhere else they
# train the zoo faster too (conv: 2.6x on 2 AMD EPYC cores, reports/benchmarks.md) and
# stay deterministic. Read when TensorFlow is imported; TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
