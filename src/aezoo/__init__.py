"""aezoo: a zoo of autoencoders on MNIST, orchestrated with DVC and tracked with MLflow."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) buries the stage
# logs; keep warnings and errors. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
