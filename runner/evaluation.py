"""Evaluation: one checkpoint, every new checkpoint of a training run, or an ensemble."""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from configs.errors import UserError
from configs.run_config import RunConfig
from layers import correct_and_almost
from models import build_model
from runner import best, checkpoints, perturb, summaries
from runner.devices import compute_options, prepare_devices, set_precision, use_xla
from runner.inputs import make_dataset, read_batches
from configs.progress import Progress


class Evaluator:
  """A model, the evaluation data and one compiled predict function, reused for every checkpoint."""

  def __init__(self, config: RunConfig, model=None):
    """With `model` (training's own, for --eval_every) that model is evaluated as it is; the
    caller has set the devices and precision."""
    if config.summary_dir:
      checkpoints.check_writable(config.test_dir)
    if config.predictions_out:
      checkpoints.check_writable(os.path.dirname(os.path.abspath(config.predictions_out)))
    self.config = config
    self.dataset, self.spec = make_dataset(config, 'test', config.eval_batch_size, repeat=False)
    self.model = model or build_model(config.model, config.hparams, self.spec,
                                      compute_options(config))
    self._predict = tf.function(self.model, jit_compile=use_xla(config.jit_compile),
                                autograph=False)  # the model's Python is plain

  def restore(self, path: str) -> int:
    return checkpoints.restore_model(self.model, path, self.config)

  def predict(self) -> dict:
    """`logits`, `labels` and (with a decoder) `reconstructions` for every example, in order."""
    limit = self.config.eval_size or self.spec.num_examples
    progress = Progress(limit or 0)
    parts = {'logits': [], 'labels': [], 'reconstructions': []}
    done = 0
    for batch in read_batches(self.dataset, self.config):
      outputs = self._predict(batch)
      parts['logits'].append(outputs['logits'].numpy())
      parts['labels'].append(batch['labels'].numpy())
      if 'reconstructions' in outputs:
        parts['reconstructions'].append(np.stack([r.numpy() for r in outputs['reconstructions']],
                                                 axis=1))
      done += len(parts['logits'][-1])
      if limit and done >= limit:
        break
      if len(parts['logits']) % 50 == 0:
        logging.info('evaluated %d%s images, %.0f images/s%s', done, f'/{limit}' if limit else '',
                     progress.rate(done), f', ETA {progress.eta(done)}' if limit else '')
    return {k: np.concatenate(v)[:limit or None] for k, v in parts.items() if v}


def count(logits, labels, num_targets) -> dict:
  """Correct / wrong / almost-wrong counts and accuracy, as the original's evaluation."""
  correct, almost = correct_and_almost(tf.constant(labels), tf.constant(logits), num_targets)
  total, correct, almost = len(labels), int(np.sum(correct)), int(np.sum(almost))
  return {'correct': correct, 'wrong': total - correct, 'almost_wrong': total - almost,
          'total': total, 'accuracy': correct / max(total, 1)}


def _report(counts: dict, what: str):
  """The original's line on stdout, unchanged (scripts parse it), and a richer log line."""
  percent = 100.0 * counts['wrong'] / max(counts['total'], 1)
  print(f'Total wrong predictions: {counts["wrong"]}, wrong percent: {percent}%', flush=True)
  logging.info('%s: %d wrong of %d, %.2f%% error (test accuracy %.2f%%)', what, counts['wrong'],
               counts['total'], percent, 100.0 * counts['accuracy'])


def evaluate_checkpoint(evaluator: Evaluator, path: str, writer=None) -> dict:
  """Evaluates one checkpoint; writes its counts at its step and, if asked, its predictions."""
  step = evaluator.restore(path)
  return evaluate_model(evaluator, step, writer, f'{path} (step {step})')


def evaluate_model(evaluator: Evaluator, step: int, writer=None, what: str = '') -> dict:
  """Evaluates the evaluator's model as it is now, reporting and writing its counts at `step`."""
  config = evaluator.config
  predictions = evaluator.predict()
  counts = count(predictions['logits'], predictions['labels'], config.num_targets)
  _report(counts, what or f'step {step}')
  if writer is not None:
    summaries.write_scalars(writer, step, counts)
    writer.flush()
  if config.predictions_out:
    write_npz(config.predictions_out, **predictions)
    logging.info('wrote predictions of %d examples to %s', counts['total'], config.predictions_out)
  return {**counts, 'step': step}


def _prepare(config: RunConfig):
  """The devices and numerics of an evaluation process (training sets its own)."""
  prepare_devices(config.allow_cpu, config.num_gpus)
  set_precision(config.mixed_precision, config.deterministic, config.seed, config.use_tf32)


def evaluate(config: RunConfig) -> dict:
  """--checkpoint: that checkpoint (plus --perturb); else every new one in summary_dir/train."""
  _prepare(config)
  evaluator = Evaluator(config)
  writer = tf.summary.create_file_writer(config.test_dir) if config.summary_dir else None
  if config.checkpoint:
    result = evaluate_checkpoint(evaluator, checkpoints.resolve(config.checkpoint), writer)
    if config.perturb:
      perturb.write_perturbations(evaluator, config, writer, result['step'])
    _point_to_tensorboard(config)
    return result
  result, evaluated = {}, set()
  logging.info('waiting for checkpoints in %s (timeout %ds)', config.train_dir,
               config.eval_timeout_secs)
  for path in tf.train.checkpoints_iterator(config.train_dir, min_interval_secs=1,
                                            timeout=config.eval_timeout_secs):
    if checkpoints.step_of(path) in evaluated:
      continue
    try:
      result = evaluate_checkpoint(evaluator, path, writer)
    except UserError as e:
      if tf.io.gfile.exists(path + '.index'):
        raise
      logging.warning('skipped %s, deleted before it could be read: %s', path, e)
      continue
    evaluated.add(result['step'])
    best.keep_if_best(config, result, best.copier(path))
    if result['step'] >= config.max_steps:
      break
  if not evaluated:
    raise UserError(f'no checkpoint appeared in {config.train_dir} within '
                    f'{config.eval_timeout_secs}s; start training there or pass --checkpoint')
  _point_to_tensorboard(config)
  return result


def _point_to_tensorboard(config):
  if config.summary_dir:
    logging.info('to look at the run: tensorboard --logdir=%s', config.summary_dir)


def evaluate_ensemble(config: RunConfig) -> dict:
  """Sums the logits of checkpoints `config.checkpoint.format(i)` for i < num_trials."""
  paths = [config.checkpoint.format(i) for i in range(config.num_trials)]
  paths = [checkpoints.resolve(p) for p in paths]  # a member may be a run directory
  missing = [p for p in paths if not tf.io.gfile.exists(p + '.index')]
  if missing:
    raise UserError(f'ensemble member checkpoint(s) not found: {", ".join(missing)}')
  _prepare(config)
  evaluator = Evaluator(config)
  summed, members = None, []
  for path in paths:
    evaluator.restore(path)
    predictions = evaluator.predict()
    counts = count(predictions['logits'], predictions['labels'], config.num_targets)
    _report(counts, f'member {path}')
    members.append(counts)
    summed = predictions['logits'] if summed is None else summed + predictions['logits']
  ensemble = count(summed, predictions['labels'], config.num_targets)
  _report(ensemble, f'ensemble of {len(paths)}')
  if config.summary_dir:
    writer = tf.summary.create_file_writer(config.test_dir)
    summaries.write_scalars(writer, 0, ensemble, prefix='ensemble/')
    writer.flush()
  if config.predictions_out:
    write_npz(config.predictions_out, logits=summed, labels=predictions['labels'])
  return {**ensemble, 'members': members}


def write_npz(path: str, **arrays):
  """np.savez into `path` itself (np.savez appends '.npz' to a name without it), whole or not
  at all: written beside it, then renamed. Its folder exists (Evaluator checked it)."""
  with open(f'{path}.partial', 'wb') as f:
    np.savez(f, **arrays)
  os.replace(f'{path}.partial', path)
