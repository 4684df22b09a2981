"""Runs experiment.py as a user would, in a subprocess, and reads its TensorBoard events."""

import os
import pathlib
import shutil
import subprocess
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from tests.conftest import ORACLE_DIR

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = '--hparams_override=conv1_filters=8,num_prime_capsules=2'


def run(*args, timeout=300, check=True):
  """`python experiment.py ARGS`; returns the CompletedProcess (stdout and stderr as text)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  done = subprocess.run([sys.executable, str(ROOT / 'experiment.py'), *map(str, args)],
                        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
                        check=False)
  if check and done.returncode:
    raise AssertionError(f'exit {done.returncode}:\n{done.stderr[-3000:]}')
  return done


def tiny_mnist_dir(path: pathlib.Path) -> pathlib.Path:
  """A data dir whose train and test files are the oracle's 8 real-format MNIST records."""
  path.mkdir(parents=True, exist_ok=True)
  for name in ('train_2shifted_mnist.tfrecords', 'test_0shifted_mnist.tfrecords'):
    shutil.copy(ORACLE_DIR / 'test_0shifted_mnist.tfrecords', path / name)
  return path


def scalars(directory) -> dict:
  """tag -> [(step, value)] from the event files in `directory`, read by TensorBoard itself."""
  events = event_accumulator.EventAccumulator(str(directory), size_guidance={'tensors': 0})
  events.Reload()
  result = {}
  for tag in events.Tags()['tensors']:
    values = [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
    if values and values[0][1].ndim == 0:
      result[tag] = [(step, float(value)) for step, value in values]
  return result


def tags(directory) -> set:
  events = event_accumulator.EventAccumulator(str(directory), size_guidance={'tensors': 0})
  events.Reload()
  return set(events.Tags()['tensors'])


def hparams_experiment(directory):
  """The HParams plugin's experiment (hparams and metrics) written in `directory`."""
  from tensorboard.plugins.hparams import plugin_data_pb2  # pylint: disable=g-import-not-at-top
  events = event_accumulator.EventAccumulator(str(directory), size_guidance={'tensors': 0})
  events.Reload()
  content = events.SummaryMetadata('_hparams_/experiment').plugin_data.content
  return plugin_data_pb2.HParamsPluginData.FromString(content).experiment
