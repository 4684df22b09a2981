"""Checkpoints: the run's own (`train/model.ckpt-STEP`), imports of the original's, run configs.

Saving goes through tf.train.CheckpointManager, which writes the data and index files before it
atomically updates the `checkpoint` state file: a reader never sees a half-written checkpoint.
"""

import json
import os
import re
import shutil
import uuid
import zlib
from typing import Callable

import tensorflow as tf
from absl import logging

from configs.errors import UserError, first_line
from configs.hparams import format_overrides
from configs.run_config import CONFIG_FILE, RunConfig
from models import import_tf1_checkpoint, is_tf1_checkpoint

# What must agree between a run's checkpoints and the flags that resume or evaluate them.
_MODEL_KEYS = ('model', 'dataset', 'num_targets', 'hparams')
# Hparams that only steer optimisation: a resumed run may change them (with a warning).
_FREE_HPARAMS = ('verbose', 'learning_rate', 'decay_rate', 'decay_steps', 'loss_type')
# Hparams that change no variable's shape: evaluating (or starting from) a checkpoint with other
# values is an experiment the original allowed, e.g. routing=1 on a routing=3 model.
_SHAPE_FREE_HPARAMS = _FREE_HPARAMS + ('routing', 'leaky')


def step_of(path: str) -> int:
  """The global step in a checkpoint path `.../model.ckpt-STEP`."""
  match = re.search(r'-(\d+)$', path)
  return int(match.group(1)) if match else 0


def make_manager(checkpoint: tf.train.Checkpoint, config: RunConfig, step: tf.Variable,
                 directory: str = '', max_to_keep: int = 0):
  """Saves `model.ckpt-STEP` in `directory` (default: the run's train/ directory)."""
  return tf.train.CheckpointManager(checkpoint, directory or config.train_dir,
                                    max_to_keep=max_to_keep or config.keep_checkpoints,
                                    checkpoint_name='model.ckpt', step_counter=step)


def _size(path: str) -> int:
  """Bytes of the checkpoint at `path` (its index and data files)."""
  return sum(tf.io.gfile.stat(f).length for f in tf.io.gfile.glob(path + '.*'))


_WARNED_LOW_SPACE = set()  # directories already warned about, once per process


def _warn_if_low_space(manager):
  """Warns once when the free space left is below twice the size of the last checkpoint."""
  latest, directory = manager.latest_checkpoint, manager.directory
  if not latest or directory in _WARNED_LOW_SPACE:
    return
  try:
    free = shutil.disk_usage(directory).free
  except OSError:  # not a local file system (gs://...)
    return
  size = _size(latest)
  if free < 2 * size:
    _WARNED_LOW_SPACE.add(directory)
    logging.warning('only %.1f MB free in %s, less than twice the last checkpoint (%s, %.1f '
                    'MB): free space before the disk fills up', free / 1e6, directory, latest,
                    size / 1e6)


def save(manager, step: int):
  """Saves checkpoint `step`; a full disk is one UserError naming the last complete checkpoint,
  and the partial files of `step` are removed, freeing what they took."""
  _warn_if_low_space(manager)
  try:
    manager.save(checkpoint_number=step)
  except (tf.errors.ResourceExhaustedError, OSError) as e:
    if 'No space left on device' not in str(e):
      raise
    for partial in tf.io.gfile.glob(os.path.join(manager.directory, f'*-{step}_temp*')):
      if tf.io.gfile.isdir(partial):
        tf.io.gfile.rmtree(partial)
      else:
        tf.io.gfile.remove(partial)
    latest = manager.latest_checkpoint
    raise UserError(f'no space left on device while saving checkpoint {step} to '
                    f'{manager.directory}; the last complete checkpoint is '
                    f'{step_of(latest) if latest else "none"}; free space and rerun the same '
                    'command') from None


def check_writable(directory: str):
  """Creates `directory` and proves a file can be written there, or raises UserError."""
  # A name of its own: the workers of a multi-machine run probe the same directory at once.
  probe = os.path.join(directory, f'.write_test-{uuid.uuid4().hex}')
  try:
    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(probe, 'w') as f:
      f.write('ok')
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as e:
    raise UserError(f'cannot write to {directory} ({first_line(e)}); pick a writable '
                    '--summary_dir with free space') from None


def replace_dir(target: str, fill: Callable[[str], None]):
  """Makes `target` a directory that `fill(path)` writes: built beside it under a temporary
  name, then swapped in by renames, so that a reader sees the old `target`, the new one or,
  for an instant, none, never a partial one. Local file systems."""
  staging = os.path.join(os.path.dirname(os.path.abspath(target)),
                         f'{os.path.basename(target.rstrip("/"))}.tmp-{uuid.uuid4().hex[:8]}')
  retired = staging + '.old'
  try:
    fill(staging)
    if os.path.exists(target):
      os.rename(target, retired)
    os.rename(staging, target)
  finally:
    for leftover in (staging, retired):
      shutil.rmtree(leftover, ignore_errors=True)


def save_run_config(config: RunConfig):
  """Writes the resolved config beside the checkpoints (atomically), for resume checks and
  humans."""
  path = os.path.join(config.train_dir, CONFIG_FILE)
  tf.io.gfile.makedirs(config.train_dir)
  with tf.io.gfile.GFile(path + '.tmp', 'w') as f:
    f.write(config.to_json())
  tf.io.gfile.rename(path + '.tmp', path, overwrite=True)


def saved_config(directory: str) -> dict:
  """The run config saved in `directory` (a run's train/), or {} when there is none."""
  path = os.path.join(directory, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def run_seed(config: RunConfig) -> int:
  """The run's seed: --seed, else the one its first start recorded, else one derived from
  --summary_dir (so every worker of a cluster draws the same)."""
  if config.seed is not None:
    return config.seed
  saved = saved_config(config.train_dir).get('seed')
  return zlib.crc32(config.summary_dir.encode()) % 2**31 if saved is None else saved


def check_run_config(config: RunConfig, directory: str, keys=_MODEL_KEYS, free=_FREE_HPARAMS):
  """Raises UserError when the run saved in `directory` differs from `config` in `keys`; a
  change of an hparam in `free` is only a warning."""
  path = os.path.join(directory, CONFIG_FILE)
  saved = saved_config(directory)
  if not saved:
    return
  current = json.loads(config.to_json())
  diffs, fix = [], {}
  for key in keys:
    if key == 'hparams':
      changed = {k: saved[key].get(k) for k, v in current[key].items() if saved[key].get(k) != v}
      fix = {k: v for k, v in changed.items() if k not in free}
      for k in changed.keys() - fix.keys():
        logging.warning('hparam %s changed from %s to %s (from %s) since %s', k, changed[k],
                        current[key][k], config.hparam_source(k), path)
      diffs += [f'{k}={v} (now {current[key][k]}, from {config.hparam_source(k)})'
                for k, v in fix.items()]
    elif saved.get(key) != current[key]:
      diffs.append(f'--{key}={saved.get(key)} (now {current[key]})')
  if diffs:
    hint = f' (--hparams_override={format_overrides(fix)})' if fix else ''
    raise UserError(f'the checkpoints in {directory} were made with {", ".join(diffs)}; '
                    f'use the same flags{hint}, or a new --summary_dir')


# What a cut-short or damaged checkpoint raises when read (a truncated .data file is an
# IndexError in TF's reader).
_READ_ERRORS = (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.InternalError,
                tf.errors.InvalidArgumentError, IndexError)


def resolve(path: str) -> str:
  """`path`, or the latest checkpoint when it is a directory (a run's train/ or the run itself),
  as TensorFlow's own tools read a directory."""
  if not path or not tf.io.gfile.isdir(path):
    return path
  latest = tf.train.latest_checkpoint(path) or tf.train.latest_checkpoint(
      os.path.join(path, 'train'))
  if not latest:
    raise UserError(f'no checkpoint in {path}: expected a checkpoint state file there or in '
                    f'{os.path.join(path, "train")}; pass a checkpoint path like '
                    f'{os.path.join(path, "train", "model.ckpt-STEP")}')
  return latest


def _unreadable(path: str, error: Exception) -> UserError:
  return UserError(f'checkpoint {path} is unreadable (cut short or corrupt: '
                   f'{first_line(error)[:160]}); use another checkpoint of the run, or copy it '
                   'again')


def restore_model(model, path: str, config: RunConfig) -> int:
  """Loads the checkpoint at `path` (this project's or the original code's) into `model`.

  Returns the checkpoint's global step. Raises UserError for a missing, corrupt or mismatched
  checkpoint.
  """
  if not tf.io.gfile.exists(path + '.index'):
    raise UserError(f'checkpoint {path} not found (expected the file {path}.index)')
  if is_tf1_checkpoint(path):
    try:
      return import_tf1_checkpoint(path, model)
    except _READ_ERRORS as e:
      raise _unreadable(path, e) from None
  check_run_config(config, os.path.dirname(path), keys=('model', 'hparams'),
                   free=_SHAPE_FREE_HPARAMS)
  step = tf.Variable(0, dtype=tf.int64)
  try:
    tf.train.Checkpoint(model=model, step=step).restore(path).expect_partial() \
        .assert_existing_objects_matched()
  except _READ_ERRORS as e:
    raise _unreadable(path, e) from None
  except (AssertionError, ValueError) as e:
    saved, current = saved_config(os.path.dirname(path)), json.loads(config.to_json())
    data = [f'--{k}={saved[k]}' for k in ('dataset', 'num_targets') if saved.get(k, current[k])
            != current[k]]  # other data, other image sizes: evaluation may still be meant
    trained = f' (it was trained with {", ".join(data)})' if data else ''
    raise UserError(f'checkpoint {path} does not fit --model={config.model} with these hparams '
                    f'and this data{trained}: {str(e).splitlines()[0][:200]}') from None
  return int(step.numpy())


def _resume(checkpoint, path: str):
  """Restores model, optimizer and step (an older version's saved input iterator is ignored:
  the data position now follows from the step)."""
  checkpoint.restore(path).expect_partial().assert_existing_objects_matched()


def restore_or_start(manager, checkpoint, model, step, config: RunConfig) -> str:
  """Resumes from the run's own newest readable checkpoint, else imports --checkpoint, else
  starts fresh. Returns which of the three happened ('resumed', 'imported' or 'fresh').

  A cut-short latest checkpoint (a full disk, an interrupted copy) is skipped with a warning
  naming it; when none can be read the run stops rather than start again from scratch.
  """
  if manager.latest_checkpoint:
    check_run_config(config, config.train_dir)
    skipped = []
    for path in reversed(manager.checkpoints):
      try:
        _resume(checkpoint, path)
      except _READ_ERRORS as e:
        skipped.append(path)
        logging.warning('%s', _unreadable(path, e))
        continue
      if skipped:
        logging.warning('the latest checkpoint %s is unreadable; resumed from %s, the newest '
                        'complete one', skipped[0], path)
      logging.info('resumed from %s at step %d', path, int(step.numpy()))
      return 'resumed'
    raise UserError(f'no checkpoint in {config.train_dir} can be read (the latest: '
                    f'{skipped[0]}); move the broken ones away to start again, or use a new '
                    '--summary_dir')
  if config.checkpoint:
    path = resolve(config.checkpoint)
    step.assign(restore_model(model, path, config))
    logging.info('started from %s at step %d', path, int(step.numpy()))
    return 'imported'
  return 'fresh'
