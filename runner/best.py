"""The best checkpoint of a run's evaluation: SUMMARY_DIR/best/, the checkpoint with the lowest
error so far (a tie keeps the earlier step), beside best.json (step, split, error, time).

best/ is built beside the old one and swapped in by renames (checkpoints.replace_dir): a reader
never sees a partial one. CheckpointManager (--keep_checkpoints) only deletes files in
train/, so best/ stays. Evaluators of one run (several --train=false, or one inside training)
take turns through an flock on SUMMARY_DIR/best.lock, so a better checkpoint is never replaced
by a worse one read before it landed.
"""

import contextlib
import datetime
import fcntl
import json
import os
from typing import Callable, Optional

import tensorflow as tf
from absl import logging

from configs.run_config import CONFIG_FILE, RunConfig
from runner import checkpoints

BEST_DIR = 'best'
INFO_FILE = 'best.json'
LOCK_FILE = 'best.lock'


def best_dir(summary_dir: str) -> str:
  return os.path.join(summary_dir, BEST_DIR)


def read_info(summary_dir: str) -> Optional[dict]:
  """best.json of the run's best checkpoint, or None when there is none yet."""
  path = os.path.join(best_dir(summary_dir), INFO_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def copier(path: str) -> Callable[[str], None]:
  """Writes the files of checkpoint `path` under another prefix (continuous evaluation)."""
  def copy(prefix):
    for name in tf.io.gfile.glob(path + '.*'):
      tf.io.gfile.copy(name, prefix + name[len(path):])
  return copy


def writer(model, step: int) -> Callable[[str], None]:
  """Writes `model` and `step` as a checkpoint at a prefix (--eval_every, between saves)."""
  def write(prefix):
    checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(step, dtype=tf.int64))
    # Creates the save counter, which save() writes and restore_model's match expects.
    checkpoint.save_counter  # pylint: disable=pointless-statement
    checkpoint.write(prefix)
  return write


def keep_if_best(config: RunConfig, result: dict, write: Callable[[str], None]) -> bool:
  """Makes the evaluated checkpoint (`result`: counts and step) best/ when its error is lower
  than the best's; `write(prefix)` writes its files. Returns whether it did."""
  split = 'validation' if config.validate else 'test'
  info = {'step': result['step'], 'split': split,
          'error': result['wrong'] / max(result['total'], 1),
          'time': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}
  with _one_at_a_time(config.summary_dir):
    old = read_info(config.summary_dir)
    if old and old['split'] != split:
      logging.warning('%s holds the best on the %s split; not replaced by a %s evaluation',
                      best_dir(config.summary_dir), old['split'], split)
      return False
    if old and (old['error'], old['step']) <= (info['error'], info['step']):
      return False
    _replace(config, info, write)
  logging.info('best checkpoint: step %d, %.2f%% %s error, in %s', info['step'],
               100 * info['error'], split, best_dir(config.summary_dir))
  return True


@contextlib.contextmanager
def _one_at_a_time(summary_dir: str):
  """Holds SUMMARY_DIR/best.lock (flock; NFS and Lustre mounted with flock support honour it)."""
  with open(os.path.join(summary_dir, LOCK_FILE), 'a') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    yield


def _replace(config: RunConfig, info: dict, write: Callable[[str], None]):
  def fill(staging):
    os.makedirs(staging)
    name = f'model.ckpt-{info["step"]}'
    write(os.path.join(staging, name))
    with open(os.path.join(staging, 'checkpoint'), 'w') as f:  # the state file, as TF writes it
      f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    run_config = os.path.join(config.train_dir, CONFIG_FILE)
    if tf.io.gfile.exists(run_config):
      tf.io.gfile.copy(run_config, os.path.join(staging, CONFIG_FILE))
    with open(os.path.join(staging, INFO_FILE), 'w') as f:
      json.dump(info, f, indent=2)
  checkpoints.replace_dir(best_dir(config.summary_dir), fill)
