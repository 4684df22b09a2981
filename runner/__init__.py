"""The train / evaluate loops: strategy, step functions, checkpoints, summaries, progress."""

from runner.evaluation import evaluate, evaluate_ensemble
from runner.export import export
from runner.training import Preempted, WorkerLost, train
