"""Run directories as experiment.py writes them: the resolved config and the TensorBoard scalars.

A run directory (`--summary_dir`) holds `train/run_config.json`, `train/events.*` (losses, batch
accuracy, learning rate at each logged step) and `test/events.*` (correct, wrong, total, accuracy
at each evaluated checkpoint's step; `ensemble/...` at step 0 for an ensemble).
"""

import argparse
import dataclasses
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from configs.errors import ArgumentParser, UserError, fail
from configs.run_config import CONFIG_FILE

Series = List[Tuple[int, float]]  # (step, value), by step


@dataclasses.dataclass
class Run:
  """One run directory: its config (None when missing), scalars by tag, notes on what is missing."""
  name: str
  path: str
  config: Optional[dict]
  train: Dict[str, Series]
  test: Dict[str, Series]
  notes: List[str]

  def test_errors(self, prefix: str = '') -> Series:
    """(step, test error in %) per evaluation; `prefix='ensemble/'` for an ensemble's."""
    wrong = dict(self.test.get(prefix + 'wrong', []))
    total = dict(self.test.get(prefix + 'total', []))
    errors = []
    for step, accuracy in self.test.get(prefix + 'accuracy', []):
      if total.get(step) and step in wrong:  # exact: counts are small integers
        errors.append((step, 100.0 * wrong[step] / total[step]))
      else:
        errors.append((step, 100.0 * (1.0 - accuracy)))
    return errors

  @property
  def last_train_step(self) -> Optional[int]:
    """The highest step of any training scalar, None without training events."""
    return max((series[-1][0] for series in self.train.values()), default=None)


def read_scalars(directory: str) -> Dict[str, Series]:
  """tag -> [(step, value)] from the event files in `directory`, read by TensorBoard's reader.

  Nothing is dropped when steps go back (a checkpoint evaluated again): each step keeps the
  value written last.
  """
  if not tf.io.gfile.glob(os.path.join(directory, 'events.*')):
    return {}
  events = event_accumulator.EventAccumulator(
      directory, size_guidance={'tensors': 0, 'scalars': 0}, purge_orphaned_data=False)
  events.Reload()
  tags = events.Tags()
  result = {}
  for tag in tags['tensors']:
    values = {}
    for event in events.Tensors(tag):
      value = tensor_util.make_ndarray(event.tensor_proto)
      if value.ndim == 0 and np.issubdtype(value.dtype, np.number):
        values[event.step] = float(value)
    if values:
      result[tag] = sorted(values.items())
  for tag in tags['scalars']:  # TF1-style summaries
    result.setdefault(tag, sorted({e.step: float(e.value) for e in events.Scalars(tag)}.items()))
  return result


def _is_run_dir(path: str) -> bool:
  return any(tf.io.gfile.isdir(os.path.join(path, part)) for part in ('train', 'test'))


def _read_config(path: str, notes: List[str]) -> Optional[dict]:
  config_path = os.path.join(path, 'train', CONFIG_FILE)
  if not tf.io.gfile.exists(config_path):
    notes.append(f'no train/{CONFIG_FILE}')
    return None
  try:
    with tf.io.gfile.GFile(config_path) as f:
      return json.load(f)
  except (ValueError, tf.errors.OpError) as e:
    notes.append(f'unreadable train/{CONFIG_FILE} ({str(e).splitlines()[0]})')
    return None


def load_run(path: str, name: str = '') -> Run:
  """Reads one run directory; what is missing becomes a note, not an error."""
  notes = []
  config = _read_config(path, notes)
  train = read_scalars(os.path.join(path, 'train'))
  test = read_scalars(os.path.join(path, 'test'))
  if not train:
    notes.append('no train events')
  if not test:
    notes.append('no test events')
  return Run(name or os.path.basename(os.path.normpath(path)), path, config, train, test, notes)


def find_runs(paths: Sequence[str]) -> List[Run]:
  """Loads each run directory in `paths`; a folder of run directories stands for all of them.

  Runs are named after their directory (the path as given when two names would clash).
  """
  found = []
  for path in paths:
    if not tf.io.gfile.isdir(path):
      raise UserError(f'{path} is not a directory; expected a run directory (the --summary_dir '
                      'of experiment.py)')
    if _is_run_dir(path):
      found.append(path)
      continue
    inside = sorted(os.path.join(path, child.rstrip('/')) for child in tf.io.gfile.listdir(path))
    inside = [child for child in inside if _is_run_dir(child)]
    if not inside:
      raise UserError(f'{path} is not a run directory: it holds no train/ or test/ folder, nor '
                      'do its subfolders; pass the --summary_dir of experiment.py runs')
    found += inside
  found = list(dict.fromkeys(os.path.normpath(p) for p in found))
  names = [os.path.basename(p) for p in found]
  return [load_run(path, name if names.count(name) == 1 else path)
          for path, name in zip(found, names)]


def command_parser(module: str, doc: str) -> argparse.ArgumentParser:
  """`python -m reports.MODULE RUN_DIR...`, described by the first line of its docstring."""
  parser = ArgumentParser(prog=f'python -m reports.{module}',
                          description=doc.splitlines()[0].split(': ', 1)[1])
  parser.add_argument('runs', nargs='+', metavar='RUN_DIR',
                      help='a --summary_dir of experiment.py, or a folder of them')
  return parser


def run_command(parser: argparse.ArgumentParser, action: Callable[[argparse.Namespace], None],
                argv: Optional[Sequence[str]] = None):
  """Parses `argv` with `parser` and calls `action(args)`; a UserError is one `error:` line."""
  args = parser.parse_args(argv)
  try:
    action(args)
  except UserError as e:
    fail(str(e))
