"""Trains and evaluates capsule networks: the flags of the 2017 code, on TensorFlow 2.

Kept short on purpose: it defines the flags, checks them into one RunConfig, and calls
runner.train, runner.evaluate or runner.evaluate_ensemble. README.md has the recipes.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS

# The original flags, with their original meanings.
flags.DEFINE_string('data_dir', '', 'Directory of the dataset files; empty with --dataset=mnist '
                    'uses the built-in 5,000 real MNIST digits.')
flags.DEFINE_enum('dataset', 'mnist', ['mnist', 'affnist', 'cifar10', 'norb'],
                  'The dataset to train or evaluate on.')
flags.DEFINE_string('model', 'capsule', 'The model: capsule or baseline.')
flags.DEFINE_string('hparams_override', '', 'Hparams overrides as key=value,key=value '
                    '(booleans as true/false), applied on top of --preset.')
flags.DEFINE_integer('max_steps', 1000, 'Number of training steps (global step to stop at).')
flags.DEFINE_integer('save_step', 1500, 'Save a checkpoint every this many steps (and at the end).')
flags.DEFINE_string('summary_dir', '', 'Run directory: checkpoints and training events in train/, '
                    'evaluation events in test/.')
flags.DEFINE_string('checkpoint', '', 'Checkpoint to evaluate (this project\'s or the original '
                    'code\'s), or to start training from; with {} a pattern for --num_trials.')
flags.DEFINE_boolean('train', True, 'Train; --train=false evaluates.')
flags.DEFINE_boolean('validate', False, 'Use the validation split (held-out training data).')
flags.DEFINE_integer('num_gpus', 1, 'Number of GPUs to split each batch over.')
flags.DEFINE_integer('num_targets', 1, 'Targets per image: 2 for MultiMNIST.')
flags.DEFINE_integer('num_trials', 1, 'Ensemble size: evaluates --checkpoint.format(i), i < N.')
flags.DEFINE_integer('eval_size', 0, 'Evaluate at most this many examples (0: all of them).')
# Additions.
flags.DEFINE_string('preset', 'mnist', 'Hparams preset: mnist, multimnist, cifar10, norb, '
                    'baseline or quickstart (see configs/hparams.py).')
flags.DEFINE_integer('batch_size', 0, 'Global batch size (0: 128 to train, 100 to evaluate).')
flags.DEFINE_integer('seed', None, 'Random seed for weights and data order.')
flags.DEFINE_boolean('deterministic', False, 'Deterministic ops (needs --seed): identical runs.')
flags.DEFINE_boolean('jit_compile', None, 'Compile the model step with XLA (default: on GPUs; '
                     'off on CPUs, where XLA convolutions measured 20x slower).')
flags.DEFINE_enum('mixed_precision', 'none', ['none', 'bfloat16', 'float16'],
                  'Mixed precision compute; routing and losses stay float32.')
flags.DEFINE_integer('log_every', 100, 'Log progress and write training scalars every N steps.')
flags.DEFINE_integer('steps_per_loop', 1, 'Training steps per compiled call: 50-200 keeps a fast '
                     'GPU busy; logs, saves and signals still happen at exact steps.')
flags.DEFINE_string('predictions_out', '', 'Evaluation writes logits, labels (and '
                    'reconstructions) of every example to this .npz file.')
flags.DEFINE_boolean('perturb', False, 'With --checkpoint: write the paper\'s figure 4, the '
                     'reconstruction as each capsule dimension moves, to summary_dir.')
flags.DEFINE_integer('eval_timeout_secs', 6 * 3600, 'Continuous evaluation stops after waiting '
                     'this long for a new checkpoint.')
flags.DEFINE_integer('keep_checkpoints', 1000, 'Keep at most this many checkpoints.')
flags.DEFINE_integer('cpu_replicas', 0, 'Split the CPU into N logical devices and mirror over '
                     'them (to test multi-device runs without GPUs).')
flags.DEFINE_boolean('distort', None, 'Random crops/flips for training (default: the dataset\'s).')
flags.DEFINE_boolean('generate', False, 'MNIST: shift and pair digits on the fly from the raw IDX '
                     'files in --data_dir instead of reading TFRecords.')
flags.DEFINE_boolean('debug', False, 'Show full tracebacks instead of one-line errors.')


def make_config():
  """The RunConfig the flags describe; raises UserError for bad values or combinations."""
  from configs import RunConfig, make_hparams  # pylint: disable=g-import-not-at-top
  hparams = make_hparams(FLAGS.preset, FLAGS.hparams_override)
  return RunConfig(
      hparams=hparams, model=FLAGS.model, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
      summary_dir=FLAGS.summary_dir, train=FLAGS.train, validate=FLAGS.validate,
      max_steps=FLAGS.max_steps, save_step=FLAGS.save_step, checkpoint=FLAGS.checkpoint,
      num_gpus=FLAGS.num_gpus, cpu_replicas=FLAGS.cpu_replicas, num_targets=FLAGS.num_targets,
      num_trials=FLAGS.num_trials, eval_size=FLAGS.eval_size, batch_size=FLAGS.batch_size,
      seed=FLAGS.seed, deterministic=FLAGS.deterministic, jit_compile=FLAGS.jit_compile,
      mixed_precision=FLAGS.mixed_precision, log_every=FLAGS.log_every,
      steps_per_loop=FLAGS.steps_per_loop,
      predictions_out=FLAGS.predictions_out, perturb=FLAGS.perturb,
      eval_timeout_secs=FLAGS.eval_timeout_secs, keep_checkpoints=FLAGS.keep_checkpoints,
      distort=FLAGS.distort, generate=FLAGS.generate).validate_flags()


def run(config):
  import runner  # pylint: disable=g-import-not-at-top
  if config.train:
    return runner.train(config)
  if config.ensemble:
    return runner.evaluate_ensemble(config)
  return runner.evaluate(config)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.INFO)
  from configs import UserError  # pylint: disable=g-import-not-at-top
  try:
    config = make_config()  # before TensorFlow loads: flag mistakes fail in a blink
  except UserError as e:
    _fail(e)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from runner import Preempted  # pylint: disable=g-import-not-at-top
  try:
    run(config)
  except Preempted as e:
    logging.warning('%s', e)
    sys.exit(e.exit_code)
  except (UserError, tf.errors.DataLossError, tf.errors.InvalidArgumentError,
          tf.errors.NotFoundError, tf.errors.PermissionDeniedError,
          tf.errors.ResourceExhaustedError) as e:
    _fail(e)


def _fail(error):
  """Prints one line naming the problem and exits 2 (with --debug: the whole traceback)."""
  if FLAGS.debug:
    raise error
  message = getattr(error, 'message', None) or str(error)
  print(f'error: {message.strip().splitlines()[0]}', file=sys.stderr)
  sys.exit(2)


if __name__ == '__main__':
  app.run(main)
