"""Every bad input a user can give exits non-zero with one line naming the problem and the fix."""

import sys

import pytest

from tests import cli
from tests.conftest import ORACLE_DIR

ORACLE = f'{ORACLE_DIR}/model.ckpt-0'


@pytest.fixture(scope='module')
def env(tmp_path_factory, tiny_data, tiny_run):
  """The tiny data, a copy of the tiny run (checkpoints 2, 4, 6), a corrupt data dir and a file
  blocking a path; `train_files`: the run's train/ directory before any case ran."""
  root = tmp_path_factory.mktemp('errors')
  tiny_run.copy_to(root / 'run')
  corrupt = root / 'corrupt'
  corrupt.mkdir()
  good = (tiny_data / 'test_0shifted_mnist.tfrecords').read_bytes()
  for name in ('train_2shifted_mnist.tfrecords', 'test_0shifted_mnist.tfrecords'):
    (corrupt / name).write_bytes(good[:len(good) // 2] + b'\x00garbage' * 7)
  blocker = root / 'a_file'
  blocker.write_text('not a directory')
  cut = root / 'tf1_cut'  # the original's checkpoint, its data file cut short
  cut.mkdir()
  (cut / 'model.ckpt-0.index').write_bytes((ORACLE_DIR / 'model.ckpt-0.index').read_bytes())
  data = (ORACLE_DIR / 'model.ckpt-0.data-00000-of-00001').read_bytes()
  (cut / 'model.ckpt-0.data-00000-of-00001').write_bytes(data[:len(data) // 2])
  return {'root': root, 'data': tiny_data, 'corrupt': corrupt, 'blocker': blocker,
          'train_files': sorted(p.name for p in (root / 'run' / 'train').iterdir())}


# (flags, what the one error line must contain). {root}, {data}, ... are filled from `env`.
# These fail before TensorFlow starts (flags, hparams, their combinations), or need a process of
# their own (devices are set once per process): each is its own `python experiment.py`.
OWN_PROCESS_CASES = [
    (['--hparams_override=routings=2'], "unknown hparam 'routings'; valid keys and types"),
    (['--hparams_override=routing=two'], "routing='two' is not a valid int"),
    (['--hparams_override=padding=same'], "padding='same' is not one of VALID, SAME"),
    (['--preset=cifar'], "unknown preset 'cifar'"),
    (['--summary_dir=', '--max_steps=5'], '--summary_dir is required'),
    (['--max_steps=0'], '--max_steps=0 must be at least 1'),
    (['--num_targets=3'], 'mnist: num_targets=3 is not one of 1, 2'),
    (['--num_targets=2', '--dataset=cifar10', '--data_dir={data}'], 'it needs --dataset=mnist'),
    (['--num_trials=3', '--train=false', '--checkpoint=x'],
     'needs a --checkpoint pattern with {{}}'),
    (['--train=false', '--checkpoint={root}/m{{}}'], 'set --num_trials to the number of members'),
    (['--num_trials=2', '--checkpoint={root}/m{{}}'], 'add --train=false'),
    (['--predictions_out={root}/p.npz'], '--predictions_out is written by evaluation'),
    (['--perturb', '--train=false'], '--perturb needs --train=false and a single --checkpoint'),
    (['--deterministic'], '--deterministic needs --seed'),
    (['--dataset=norb', '--data_dir=builtin'], '--data_dir=builtin is MNIST digits'),
    (['--mixed_precision=fp8'], '--mixed_precision=fp8 is not one of: none, bfloat16, float16'),
    (['--max_steps=ten'], "flag --max_steps=ten: invalid literal for int() with base 10: 'ten'"),
    (['--preset=quickstart', '--perturb', '--train=false',
      '--checkpoint={root}/run/train/model.ckpt-2', '--hparams_override=remake=false'],
     '--perturb needs the decoder, but remake=false comes from --hparams_override'),
    (['--cpu_replicas=3', '--batch_size=4'], '--batch_size=4 does not split over 3 replicas'),
    (['--keep_checkpoints=0'], '--keep_checkpoints=0 must be at least 1'),
    (['--hparams_override=learning_rate=nan'],
     'hparam learning_rate=nan must be a finite number above 0'),
    (['--hparams_override=decay_rate=0'], 'hparam decay_rate=0.0 must be a finite number above 0'),
    (['--hparams_override=decay_rate=-1'], 'hparam decay_rate=-1.0 must be a finite number'),
    (['--hparams_override=decay_steps=0'], 'hparam decay_steps=0 must be at least 1'),
    (['--batch_size=0'], '--batch_size=0 must be at least 1'),
    (['--seed=-1'], '--seed=-1 must be from 0 to 2**32 - 1'),
    (['--eval_timeout_secs=-1', '--train=false'], '--eval_timeout_secs=-1 must not be negative'),
    (['--cpu_replicas=2', '--num_gpus=2'],
     '--cpu_replicas=2 and --num_gpus=2 both choose the devices: pass one of them'),
    (['stray'], 'unexpected arguments: stray; flags are written --name=value'),
    (['--flagfile={root}/no_such_flags'], 'error: Unable to open flagfile: [Errno 2] No such'),
    # Checked against the declarations before TensorFlow starts (test_flag_mistakes_...).
    (['--model=capsnet'],
     "unknown model 'capsnet'; expected one of: baseline, capsule, paper_baseline"),
    (['--dataset=foo'], "unknown dataset 'foo'; expected one of: affnist, cifar10"),
    (['--dataset=cifar10', '--data_dir='], '--data_dir is required for --dataset=cifar10: '
     'python -m input_data.download --dataset=cifar10'),
    (['--data_dir='], '--data_dir is required for --dataset=mnist: python -m input_data.download '
     '--dataset=mnist'),
    (['--dataset=cifar10', '--generate', '--data_dir={root}', '--summary_dir={root}/cifar'],
     'only, not cifar10; drop --generate'),
    (['--dataset=norb', '--validate', '--data_dir={root}', '--summary_dir={root}/norb'],
     'only, not norb; drop --validate'),
    (['--dataset=affnist', '--distort', '--data_dir={root}', '--summary_dir={root}/affnist'],
     'only, not affnist; drop --distort'),
]
MISFIT = ('checkpoint {root}/run/train/model.ckpt-2 does not fit --model=capsule with these '
          'hparams and this data (it was trained with --num_targets=1): Received incompatible '
          'tensor')
# These fail after TensorFlow started (data, models, checkpoints, devices). A TensorFlow start
# costs 2-4 s, so they run one after another through experiment.main in one process
# (cli.run_in_one_process): the same code as `python experiment.py`, but for the process exit.
SHARED_PROCESS_CASES = [
    (['--data_dir={root}/nowhere', '--summary_dir={root}/new/run'], 'missing data file(s) in '
     '{root}/nowhere: '
     'train_2shifted_mnist.tfrecords; build them with: python -m input_data.mnist_shift'),
    (['--train=false', '--checkpoint={root}/run/train/model.ckpt-9'],
     'checkpoint {root}/run/train/model.ckpt-9 not found'),
    (['--train=false', '--checkpoint={root}/run/train/model.ckpt-{{}}', '--num_trials=4'],
     'ensemble member checkpoint(s) not found: {root}/run/train/model.ckpt-0, '
     '{root}/run/train/model.ckpt-1, {root}/run/train/model.ckpt-3'),
    (['--hparams_override=conv1_filters=8,num_prime_capsules=4', '--max_steps=3'],
     'were made with num_prime_capsules=2 (now 4, from --hparams_override)'),
    (['--model=baseline', '--train=false', '--checkpoint={root}/run/train/model.ckpt-2'],
     'were made with --model=capsule (now baseline)'),
    (['--data_dir=builtin', '--generate', '--num_targets=2', '--train=false',
      '--checkpoint={root}/run/train/model.ckpt-2'],
     MISFIT),
    (['--train=false', f'--checkpoint={ORACLE}', '--hparams_override=remake=false'],
     'conv_capsule1/weights has shape [9, 9, 256, 16] but the model expects [9, 9, 256, 256]; '
     'try --hparams_override=num_prime_capsules=2'),
    (['--train=false', '--checkpoint={root}/tf1_cut/model.ckpt-0',
      '--hparams_override=num_prime_capsules=2,remake=false'],
     'checkpoint {root}/tf1_cut/model.ckpt-0 is unreadable (cut short or corrupt: Read less '
     'bytes than requested)'),
    (['--summary_dir={blocker}/run'], 'cannot write to {blocker}/run/train'),
    (['--num_gpus=64'], '--num_gpus=64 but TensorFlow sees'),
    # Continuous evaluation (no --checkpoint) of a run that never wrote one.
    (['--train=false', '--summary_dir={root}/never_trained', '--eval_timeout_secs=2'],
     'no checkpoint appeared in {root}/never_trained/train within 2s; start training there or '
     'pass --checkpoint'),
    (['--data_dir={corrupt}', '--train=false', '--checkpoint={root}/run/train/model.ckpt-2'],
     'corrupt/test_0shifted_mnist.tfrecords'),  # a TensorFlow error (DataLossError), one line
    # A TFRecord cut short, read by training: the line is ours, not TensorFlow's wrapping.
    (['--data_dir={corrupt}', '--summary_dir={root}/corrupt_run'],
     'error: cannot read the data in --data_dir={corrupt}: {corrupt}/train_2shifted_mnist.'
     'tfrecords is corrupt or truncated: its records end at byte 3564 of 3620; rebuild or '
     'download it again'),
    # The disk fills while checkpoint 6 is saved (simulate_failures); RERUN resumes it.
    (['--summary_dir={root}/full_disk', '--max_steps=8', '--save_step=2'],
     'error: no space left on device while saving checkpoint 6 to {root}/full_disk/train; the '
     'last complete checkpoint is 4; free space and rerun the same command'),
]
# Run after SHARED_PROCESS_CASES in their process, with simulate_failures() installed: the
# rerun of the full-disk case, and a run with a bug in its train step.
RERUN = ['--summary_dir={root}/full_disk', '--max_steps=8', '--save_step=2']
SHAPE_BUG = ['--summary_dir={root}/shape_bug']


def simulate_failures():
  """In the process of the shared cases: the first save of a checkpoint 6 into a `full_disk`
  run fails as on a full disk (ENOSPC, TensorFlow's message; later saves succeed, as after
  freeing space), and a `shape_bug` run's loss adds tensors of two shapes, a bug TensorFlow
  finds only when the step runs (an InvalidArgumentError, as a bad record's)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from runner import train_step  # pylint: disable=g-import-not-at-top
  save, model_losses, failed = tf.train.CheckpointManager.save, train_step.model_losses, []

  def save_or_fail(manager, checkpoint_number=None, **kwargs):
    if 'full_disk' in manager.directory and checkpoint_number == 6 and not failed:
      failed.append(checkpoint_number)
      raise tf.errors.ResourceExhaustedError(None, None, (
          '{{function_node __wrapped__SaveV2_dtypes_41_device_/job:localhost/replica:0/task:0/'
          f'device:CPU:0}}}} {manager.directory}/model.ckpt-6_temp/part-00000-of-00001.data-'
          '00000-of-00001.tempstate1; No space left on device [Op:SaveV2]'))
    return save(manager, checkpoint_number=checkpoint_number, **kwargs)

  def losses_with_a_bug(batch, outputs, *args):
    losses = model_losses(batch, outputs, *args)
    if 'shape_bug' not in flags.FLAGS.summary_dir:
      return losses
    cut = tf.numpy_function(lambda logits: logits[:, :3], [outputs['logits']], tf.float32)
    return {**losses, 'total': losses['total'] + tf.reduce_sum(outputs['logits'] + cut)}

  tf.train.CheckpointManager.save = save_or_fail
  train_step.model_losses = losses_with_a_bug


def _args(env, flags):
  """The flags of a case on top of defaults that would work (a flag given replaces its default)."""
  defaults = [f'--data_dir={env["data"]}', f'--summary_dir={env["root"]}/run', cli.TINY,
              '--batch_size=4', '--max_steps=2']
  given = {f.split('=')[0] for f in flags}
  return [d for d in defaults if d.split('=')[0] not in given] + [f.format(**env) for f in flags]


@pytest.mark.parametrize('flags, expected', OWN_PROCESS_CASES,
                         ids=[c[1][:40] for c in OWN_PROCESS_CASES])
def test_bad_input_exits_with_one_clear_line(env, flags, expected):
  cli.assert_one_error_line(cli.run(*_args(env, flags), check=False), expected.format(**env))


@pytest.fixture(scope='module')
def shared_process_results(env):
  cases = [flags for flags, _ in SHARED_PROCESS_CASES] + [RERUN, SHAPE_BUG]
  return cli.run_in_one_process([_args(env, flags) for flags in cases],
                                setup=f'{__name__}:simulate_failures')


@pytest.mark.parametrize('index', range(len(SHARED_PROCESS_CASES)),
                         ids=[c[1][:40] for c in SHARED_PROCESS_CASES])
def test_bad_input_after_tensorflow_started_exits_with_one_clear_line(env, shared_process_results,
                                                                      index):
  cli.assert_one_error_line(shared_process_results[index],
                            SHARED_PROCESS_CASES[index][1].format(**env))


def test_a_restore_that_fails_part_way_ends_with_the_error_line_at_exit_too(env):
  """TensorFlow warns of every value a failed restore left unread when the restore is collected,
  at the latest by the interpreter's exit (which cli.run emulates here)."""
  case = SHARED_PROCESS_CASES[[e for _, e in SHARED_PROCESS_CASES].index(MISFIT)]
  done = cli.run(*_args(env, case[0]), check=False, collect_at_exit=True)
  cli.assert_one_error_line(done, MISFIT.format(**env))
  assert 'Value in checkpoint could not be found' not in done.stderr


def test_flag_mistakes_are_found_before_tensorflow_is_imported():
  """An unknown dataset or model, an option the dataset lacks, a combination it refuses, no
  --data_dir: refused without TensorFlow."""
  script = ('import sys\n'
            'from configs import RunConfig, UserError\n'
            'for bad in (dict(dataset="foo"), dict(dataset="cifar10", generate=True),\n'
            '            dict(model="capsnet"), dict(dataset="norb", validate=True),\n'
            '            dict(dataset="norb", data_dir=""), dict(num_targets=2, augment="crop"),\n'
            '            dict(dataset="norb", image_size="40")):\n'
            '  try:\n'
            '    RunConfig(**{"summary_dir": "x", "data_dir": "d", **bad}).validate_flags()\n'
            '  except UserError as e:\n'
            '    print(e)\n'
            'print("tensorflow" in sys.modules)\n')
  done = cli.run_command([sys.executable, '-c', script])
  assert done.stdout.splitlines() == [
      "unknown dataset 'foo'; expected one of: affnist, cifar10, folder, kmnist, mnist, norb, "
      'tfds', '--generate applies to --dataset=mnist only, not cifar10; drop --generate',
      "unknown model 'capsnet'; expected one of: baseline, capsule, paper_baseline",
      '--validate applies to --dataset=affnist, cifar10, folder, kmnist, mnist, tfds only, not '
      'norb; drop --validate', '--data_dir is required for --dataset=norb: python -m '
      'input_data.norb --raw_dir=SMALLNORB_DIR --output_dir=data/norb',
      'mnist: distortion applies to single-digit MNIST only (as the original)',
      'norb image_size must be one of [32, 48], got 40', 'False']


@pytest.mark.parametrize('flags', [['--dataset=foo'], ['--dataset=cifar10', '--generate']])
def test_experiment_py_answers_a_flag_mistake_without_importing_tensorflow(flags):
  """`python experiment.py` itself, in a fresh interpreter (the other cases fork from a server
  that has imported TensorFlow already)."""
  script = ('import runpy, sys\n'
            f'sys.argv = ["experiment.py", "--summary_dir=x", *{flags!r}]\n'
            'try:\n'
            '  runpy.run_path("experiment.py", run_name="__main__")\n'
            'except SystemExit as e:\n'
            '  print(e.code, "tensorflow" in sys.modules)\n')
  done = cli.run_command([sys.executable, '-c', script])
  assert done.stdout.splitlines() == ['2 False']
  assert [l for l in done.stderr.splitlines() if l.startswith('error: ')] == [
      l for l in done.stderr.splitlines() if l.strip()]


def test_debug_shows_the_whole_traceback_instead_of_the_line(env):
  done = cli.run(*_args(env, ['--data_dir={root}/nowhere', '--debug']), check=False)
  assert done.returncode not in (0, 2)
  assert 'Traceback (most recent call last)' in done.stderr
  assert done.stderr.rstrip().splitlines()[-1].startswith('input_data.DataError: missing data file')
  assert not [l for l in done.stderr.splitlines() if l.startswith('error:')]


def test_failed_runs_leave_the_run_directory_as_it_was(env, shared_process_results):
  """The existing run is unchanged; a new one that failed before writing left no folder."""
  assert not (env['root'] / 'new' / 'run').exists()
  train_dir = env['root'] / 'run' / 'train'
  assert sorted(p.name for p in train_dir.iterdir()) == env['train_files']
  assert sorted(p.name for p in train_dir.glob('model.ckpt-*.index')) == [
      'model.ckpt-2.index', 'model.ckpt-4.index', 'model.ckpt-6.index']
  assert not list(env['root'].glob('**/*.tmp'))


def test_the_rerun_after_a_full_disk_resumes_from_the_last_complete_checkpoint(
    env, shared_process_results):
  rerun = shared_process_results[len(SHARED_PROCESS_CASES)]
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert f'resumed from {env["root"]}/full_disk/train/model.ckpt-4 at step 4' in rerun.stderr
  assert (env['root'] / 'full_disk' / 'train' / 'model.ckpt-8.index').exists()


def test_an_internal_tensorflow_error_keeps_its_traceback_and_exits_1(shared_process_results):
  done = shared_process_results[len(SHARED_PROCESS_CASES) + 1]
  assert done.returncode == 1
  assert 'Traceback (most recent call last)' in done.stderr
  assert 'InvalidArgumentError' in done.stderr and 'Incompatible shapes' in done.stderr
  assert not [l for l in done.stderr.splitlines() if l.startswith('error:')]
