"""Benchmarks: throughput of the input pipelines and of the models (python -m benchmarks.X)."""
