"""Benchmarks: throughput of the input pipelines and of the models (python -m benchmarks.X)."""

import os

# Set before TensorFlow loads, as experiment.py does: its C++ start-up lines are not results.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
