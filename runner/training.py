"""The training loop: input -> model -> optimizer -> checkpoint -> loop, in that order."""

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
from typing import Optional

import keras
import tensorflow as tf
from absl import logging

from configs.errors import UserError
from configs.run_config import RunConfig
from models import build_model
from runner import best, checkpoints, cluster, evaluation, summaries
from runner.devices import (compute_options, has_gpu, is_chief, is_multi_worker, make_strategy,
                            prepare_devices, set_precision)
from runner.inputs import make_dataset, reading_data
from runner.run_lock import RunLock
from runner.train_step import make_optimizer, make_train_step
from configs.progress import Progress, resident_mb

# A run whose outputs are the same for every example of a batch (logits' spread over the batch
# below COLLAPSE_SPREAD) at COLLAPSE_LOGS log points in a row has collapsed: all-zero capsules
# or dead ReLUs give no gradient to climb out with. A learning run's outputs always differ.
COLLAPSE_SPREAD = 1e-6
COLLAPSE_LOGS = 3


class Preempted(Exception):
  """SIGTERM or SIGINT arrived; a checkpoint at the current step was saved."""

  def __init__(self, signum: int, step: int):
    super().__init__(f'stopped by signal {signum} at step {step}; rerun the same command to resume')
    self.exit_code = 128 + signum


def _watch_signals(signums):
  """Turns the signals into a flag the loop checks after each step."""
  received = []
  for signum in signums:
    signal.signal(signum, lambda s, _: received.append(s))
  return received


class WorkerLost(Exception):
  """Another worker of a multi-machine run stopped answering (died, or --worker_timeout_secs)."""
  exit_code = 75  # EX_TEMPFAIL: rerun every worker, it resumes from the last complete checkpoint

  def __init__(self, step: int, error: Exception, latest: str, timeout_secs: int):
    why = (f'no answer within --worker_timeout_secs={timeout_secs}'
           if isinstance(error, tf.errors.DeadlineExceededError) else
           f'{type(error).__name__}: its connection was lost')
    super().__init__(f'lost contact with another worker after step {step} ({why}); every '
                     'worker stops: rerun all of them to resume from the last complete '
                     f'checkpoint ({latest or "none yet"})')


# What a collective reports when a peer died or timed out.
_PEER_ERRORS = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError,
                tf.errors.CancelledError, tf.errors.AbortedError)


def train(config: RunConfig) -> dict:
  """Trains to config.max_steps, resuming the run in summary_dir/train; returns last metrics.

  The run directory has one writer: the chief holds its lock (runner/run_lock.py) throughout.
  """
  resolver = cluster.resolver(config.cluster, config.slurm_port_base)  # before any GPU starts
  # One machine's run that fails before writing leaves no trace (the workers of several share
  # the directory: theirs stays).
  created = [] if resolver else [d for d in (config.summary_dir, config.train_dir)
                                 if not os.path.isdir(d)]
  checkpoints.check_writable(config.train_dir)
  try:
    prepare_devices(config.allow_cpu, config.num_gpus)
    strategy = make_strategy(config.num_gpus, config.cpu_replicas, config.worker_timeout_secs,
                             resolver)
    with RunLock(config.train_dir, enabled=is_chief(strategy)) as lock:
      return _train(config, strategy, lock)
  except BaseException:
    for directory in reversed(created):
      with contextlib.suppress(OSError):
        os.rmdir(directory)  # only when empty
    raise


def _train(config, strategy, lock):
  """train(), once the run's lock is held."""
  multi_worker = is_multi_worker(strategy)
  # The data order is a function of the seed and the step (input_data/pipeline.epochs): a run
  # keeps its seed for good, and every worker draws the same one.
  config = dataclasses.replace(config, seed=checkpoints.run_seed(config))
  set_precision(config.mixed_precision, config.deterministic, config.seed, config.use_tf32)

  # Input: its shape, and a fixed batch for reconstruction images.
  dataset, spec = make_dataset(config, 'train', config.train_batch_size, repeat=True)
  if config.train_batch_size % strategy.num_replicas_in_sync:
    raise UserError(f'--batch_size={config.train_batch_size} does not split over '
                    f'{strategy.num_replicas_in_sync} replicas; use a multiple of it')
  with reading_data(config):
    preview = next(iter(dataset))

  # Model, optimizer, checkpoint.
  with strategy.scope():
    model = build_model(config.model, config.hparams, spec, compute_options(config))
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
    optimizer = make_optimizer(config.hparams, step, config.mixed_precision)
    optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
  num_params = sum(int(tf.size(v)) for v in model.trainable_variables)
  logging.info('total_params: %d (%.1fM)', num_params, num_params / 1e6)
  manager = checkpoints.make_manager(checkpoint, config, step)
  start = checkpoints.restore_or_start(manager, checkpoint, model, step, config)

  # The data stream from the step reached: example step x batch of the run's order.
  if int(step.numpy()):
    dataset, _ = make_dataset(config, 'train', config.train_batch_size, repeat=True,
                              start=int(step.numpy()) * config.train_batch_size)
  if multi_worker:  # each worker reads all the data and keeps its part of every global batch
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
  iterator = iter(strategy.experimental_distribute_dataset(dataset))
  scratch = None
  if is_chief(strategy):
    checkpoints.save_run_config(config)
    writer = tf.summary.create_file_writer(config.train_dir)
    if start != 'resumed':
      summaries.write_run_hparams(config)
  else:  # other workers take part in saving, into a scratch directory removed at the end
    scratch = tempfile.mkdtemp(prefix='capsules-worker-')
    manager = checkpoints.make_manager(checkpoint, config, step, scratch, max_to_keep=1)
    writer = tf.summary.create_noop_writer()
  run = Run(config, strategy, model, step, iterator, preview, manager, writer, lock,
            make_train_step(model, optimizer, strategy, step, config))

  # Evaluation inside training (--eval_every), of the model as it trains.
  if config.eval_every and is_chief(strategy):
    run.evaluator = evaluation.Evaluator(config, model=model)
    run.test_writer = tf.summary.create_file_writer(config.test_dir)

  try:
    return _loop(run)
  except _PEER_ERRORS as e:
    if not multi_worker:
      raise
    raise WorkerLost(int(step.numpy()), e, manager.latest_checkpoint,
                     config.worker_timeout_secs) from None
  finally:
    if scratch:
      shutil.rmtree(scratch, ignore_errors=True)


@dataclasses.dataclass
class Run:
  """The parts of one training run that the loop drives."""
  config: RunConfig
  strategy: tf.distribute.Strategy
  model: keras.Model
  step: tf.Variable  # the global step, saved with the model
  iterator: object  # of global batches
  preview: dict  # a fixed batch for reconstruction images
  manager: tf.train.CheckpointManager
  writer: object  # train/ events
  lock: RunLock
  train_steps: object  # train_step.make_train_step's tf.function
  evaluator: Optional[evaluation.Evaluator] = None  # --eval_every
  test_writer: object = None


def _loop(run: Run):
  """Trains from the current step to --max_steps: logs, saves, evaluates, stops on signals."""
  config = run.config
  current = int(run.step.numpy())
  progress = Progress(config.max_steps, done=current)
  preemption, signals = _handle_stops(run)
  metrics, spreads = {}, []
  while current < config.max_steps:
    with reading_data(config):
      metrics = run.train_steps(run.iterator, tf.constant(_steps_to_boundary(current, config)))
    current = int(run.step.numpy())
    if preemption:
      preemption.save_checkpoint_if_preempted(checkpoint_number=current)
    bad_step = int(metrics.pop('first_bad_step'))
    if bad_step:
      raise UserError(f'loss is not finite at step {bad_step}; stopped without saving, the last '
                      f'good checkpoint is {run.manager.latest_checkpoint or "none"}; try a lower '
                      'learning_rate')
    done = current == config.max_steps
    if current % config.log_every == 0 or done:
      _log(run.writer, current, metrics, progress, config)
      spreads.append(float(metrics['logit_spread']))
      _warn_if_collapsed(spreads, current, metrics, config)
    if current % config.save_step == 0 or done or signals:
      run.lock.check()
      checkpoints.save(run.manager, current)
      _write_images(run.writer, current, run.model, run.preview, config)
    if run.evaluator and (current % config.eval_every == 0 or done):
      result = evaluation.evaluate_model(run.evaluator, current, run.test_writer)
      best.keep_if_best(config, result, best.writer(run.model, current))
    if signals:
      run.writer.flush()
      raise Preempted(signals[0], current)
  run.writer.flush()
  return {k: float(v) for k, v in metrics.items()}


def _handle_stops(run: Run):
  """(TensorFlow's preemption handler or None, the list the signal handlers append to).

  Over several machines TensorFlow's handler owns SIGTERM: on any worker's, every worker saves
  one consistent checkpoint at the same step, then stops with 143 ("requeue me").
  """
  if not is_multi_worker(run.strategy):
    return None, _watch_signals([signal.SIGTERM, signal.SIGINT])

  def exit_preempted():
    run.writer.flush()
    raise Preempted(signal.SIGTERM, int(run.step.numpy()))
  preemption = tf.distribute.experimental.PreemptionCheckpointHandler(
      run.strategy.cluster_resolver, run.manager,
      termination_config=tf.distribute.experimental.TerminationConfig(exit_fn=exit_preempted))
  return preemption, _watch_signals([signal.SIGINT])


def _warn_if_collapsed(spreads, step, metrics, config):
  """Warns once when the last COLLAPSE_LOGS logged batches each gave every example the same
  outputs: the loss is then frozen and the accuracy at chance for good."""
  collapsed = 0  # logged steps in a row, up to now, whose outputs did not depend on the input
  for spread in reversed(spreads):
    if spread >= COLLAPSE_SPREAD:
      break
    collapsed += 1
  if collapsed != COLLAPSE_LOGS:  # not yet, or already said
    return
  hparams = config.hparams
  logging.warning(
      'step %d: the run has collapsed: for the last %d logged steps every example gave the '
      'same outputs, so the classification loss is stuck at %.4f and the accuracy at chance, '
      'and it will not learn again; the likely cause is a learning rate too high '
      '(learning_rate=%g from %s): stop it and start again lower', step, COLLAPSE_LOGS,
      float(metrics['classification']),
      hparams.learning_rate, config.hparam_source('learning_rate'))


def _steps_to_boundary(current, config):
  """Steps until the next log, save, evaluation or the end, at most --steps_per_loop (by
  default none more on GPUs, 1 on CPUs)."""
  periods = [p for p in (config.log_every, config.save_step, config.eval_every) if p]
  boundaries = [config.max_steps] + [(current // p + 1) * p for p in periods]
  per_loop = config.steps_per_loop or (config.log_every if has_gpu() else 1)
  return min(per_loop, min(boundaries) - current)


def _log(writer, step, metrics, progress, config):
  images_per_second = progress.rate(step) * config.train_batch_size
  accuracy = float(metrics['correct']) / max(float(metrics['count']), 1)
  scalars = {f'loss/{k}': v for k, v in metrics.items()
             if k not in ('correct', 'count', 'learning_rate', 'logit_spread')}
  scalars.update(batch_accuracy=accuracy, learning_rate=metrics['learning_rate'],
                 logit_spread=metrics['logit_spread'],
                 images_per_second=images_per_second, resident_memory_mb=resident_mb())
  summaries.write_scalars(writer, step, scalars)
  logging.info('step %d/%d  loss %.4f  batch accuracy %.1f%%  %.0f images/s  ETA %s', step,
               config.max_steps, float(metrics['total']), 100 * accuracy, images_per_second,
               progress.eta(step))


def _write_images(writer, step, model, preview, config):
  """The reconstruction strip (and, when verbose, histograms of the whole batch)."""
  if not config.hparams.verbose:  # the strip shows a few images: run the model on those alone
    preview = {k: v[:summaries.STRIP_IMAGES] for k, v in preview.items()}
  outputs = model(preview)
  if 'reconstructions' in outputs:
    summaries.write_images(writer, step, 'reconstruction',
                           summaries.reconstruction_strip(preview, outputs['reconstructions']))
  if config.hparams.verbose:
    summaries.write_histograms(writer, step, model, outputs)
