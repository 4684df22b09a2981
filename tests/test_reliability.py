"""Runs survive SIGKILL, SIGTERM and SIGINT, stop cleanly on a non-finite loss, repeat exactly,
and are evaluated beside training checkpoint by checkpoint."""

import re
import signal
import time
import types

import numpy as np
import pytest
import tensorflow as tf

from tests import cli


def wait_for_checkpoint(train_dir, at_least, process, timeout=120):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    latest = tf.train.latest_checkpoint(str(train_dir))
    if latest and int(latest.rsplit('-', 1)[1]) >= at_least:
      return
    assert process.process.poll() is None, process.stderr[-2000:]
    time.sleep(0.05)
  raise AssertionError(f'no checkpoint >= {at_least} in {train_dir}')


def resumed_step(stderr):
  return int(re.search(r'resumed from \S+ at step (\d+)', stderr).group(1))


def train_args(data_dir, run_dir, max_steps, *extra):
  return [f'--data_dir={data_dir}', f'--summary_dir={run_dir}', cli.TINY, '--batch_size=4',
          '--save_step=1', '--log_every=1', f'--max_steps={max_steps}', *extra]


def test_sigkill_at_any_moment_resumes_from_the_last_complete_checkpoint(tiny_data, tmp_path,
                                                                         launch):
  """Each killed run's rerun resumes at the last complete checkpoint and trains past it."""
  rng = np.random.default_rng(0)
  step = 0
  for attempt in range(3):
    process = launch(*train_args(tiny_data, tmp_path, 1000))
    wait_for_checkpoint(tmp_path / 'train', step + 1, process)
    time.sleep(rng.uniform(0, 0.5))  # anywhere in a step or in a save
    process.kill()
    _, _, stderr = process.finish()
    if attempt:
      assert resumed_step(stderr) == step
    latest = tf.train.latest_checkpoint(str(tmp_path / 'train'))
    tf.train.load_checkpoint(latest)  # complete and readable
    step = int(latest.rsplit('-', 1)[1])


SIGNALS = [signal.SIGTERM, signal.SIGINT]


@pytest.fixture(scope='module')
def signalled(tiny_data, tmp_path_factory):
  """Per signal: a run stopped by it after step 2 ((exit status, stderr), its folder, and the
  checkpoints it left); then both reruns to one step more, in one process (their
  CompletedProcess)."""
  stopped = {}
  for signum in SIGNALS:
    run_dir = tmp_path_factory.mktemp(signum.name)
    process = cli.Background(*train_args(tiny_data, run_dir, 1000, '--save_step=1000'))
    try:
      process.wait_for('step 2/1000')
      process.send_signal(signum)
      code, _, stderr = process.finish()
    finally:
      process.kill()
    found = re.search(rf'stopped by signal {int(signum)} at step (\d+)', stderr)
    stopped[signum] = (code, stderr, run_dir, int(found.group(1)) if found else None,
                       [p.name for p in (run_dir / 'train').glob('*.index')])
  reruns = cli.run_in_one_process([train_args(tiny_data, run_dir, step + 1)
                                   for _, _, run_dir, step, _ in stopped.values()
                                   if step is not None])
  return stopped, dict(zip([s for s, v in stopped.items() if v[3] is not None], reruns))


@pytest.mark.parametrize('signum', SIGNALS, ids=['SIGTERM', 'SIGINT'])
def test_a_signal_saves_the_current_step_and_the_rerun_continues(signalled, signum):
  """A scheduler's preemption (SIGTERM: exit 143) or Ctrl-C (SIGINT: exit 130)."""
  stopped, reruns = signalled
  code, stderr, run_dir, step, checkpoints = stopped[signum]
  assert code == 128 + signum, stderr[-2000:]
  assert step is not None and step >= 2 and 'Traceback' not in stderr, stderr[-2000:]
  # The only checkpoint: the one the signal saved, at the step it arrived.
  assert checkpoints == [f'model.ckpt-{step}.index']
  done = reruns[signum]
  assert done.returncode == 0, done.stderr[-2000:]
  assert resumed_step(done.stderr) == step
  assert (run_dir / 'train' / f'model.ckpt-{step + 1}.index').exists()


@pytest.fixture(scope='module')
def rerun(tiny_run, deterministic_run, tmp_path_factory):
  """In one process: deterministic_run's flags again at 3 steps per call (first, as in a fresh
  process), then a copy of tiny_run (checkpoints 2, 4 and 6) trained on at learning rate 1e30.
  (folder, the loop-size run's folder, the tiny run's copy, its CompletedProcess)."""
  args, _ = deterministic_run
  loop_dir = tmp_path_factory.mktemp('loop_size')
  run = tiny_run.copy_to(tmp_path_factory.mktemp('non_finite') / 'run')
  huge = [a if a != cli.TINY else cli.TINY + ',learning_rate=1e30' for a in run.args]
  # Later flags win: logs every 3 steps, so each call runs 3 steps.
  loop_size, non_finite = cli.run_in_one_process([
      [*args, f'--summary_dir={loop_dir}', '--max_steps=6', '--steps_per_loop=4',
       '--log_every=3'],
      [*huge, '--save_step=1', '--max_steps=50']])
  assert loop_size.returncode == 0, loop_size.stderr[-2000:]
  return loop_dir, run, non_finite


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(rerun):
  _, run, done = rerun
  assert done.returncode == 2
  error = [l for l in done.stderr.splitlines() if l.startswith('error:')][0]
  step = int(re.search(r'loss is not finite at step (\d+)', error).group(1))
  assert step > 6 and f'model.ckpt-{step - 1}' in error
  assert not (run.dir / 'train' / f'model.ckpt-{step}.index').exists()
  reader = tf.train.load_checkpoint(str(run.dir / 'train' / f'model.ckpt-{step - 1}'))
  weights = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
             if k.startswith('model/') and 'OPTIMIZER' not in k]
  assert weights and all(np.all(np.isfinite(w)) for w in weights)


def test_seed_with_deterministic_gives_identical_losses_in_any_loop_size(deterministic_run,
                                                                         rerun):
  _, one_step_per_call = deterministic_run
  losses = cli.scalars(rerun[0] / 'train')['loss/total']
  assert [s for s, _ in losses] == [3, 6]
  assert losses == [(s, v) for s, v in one_step_per_call if s in (3, 6)]


def test_continuous_evaluation_beside_training_evaluates_every_checkpoint_once(tiny_data,
                                                                               tmp_path, launch):
  """The evaluator waits beside a training run rerun in stages (each resuming); a stage writes
  its checkpoint only after the evaluator reported the previous one, so every checkpoint must
  be evaluated, each once, and the evaluator stops after the one at --max_steps."""
  evaluator = launch(*train_args(tiny_data, tmp_path, 4, '--train=false',
                                 '--eval_timeout_secs=120'))
  for step in (2, 4):
    cli.run(*train_args(tiny_data, tmp_path, step, '--save_step=2'))
    evaluator.wait_for(f'model.ckpt-{step} (step {step}): ')
  code, stdout, stderr = evaluator.finish()
  assert code == 0, stderr[-2000:]
  assert [s for s, _ in cli.scalars(tmp_path / 'test')['wrong']] == [2, 4]
  assert stdout.count('Total wrong predictions: ') == 2


def test_low_free_space_before_a_save_is_warned_once_with_the_numbers(tmp_path, monkeypatch,
                                                                      caplog):
  from runner import checkpoints  # pylint: disable=g-import-not-at-top
  checkpoint = tf.train.Checkpoint(weights=tf.Variable(tf.zeros([300_000])))
  manager = tf.train.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=5)
  checkpoints.save(manager, 1)  # 1.2 MB
  size = sum(p.stat().st_size for p in tmp_path.glob('ckpt-1.*'))
  monkeypatch.setattr(checkpoints.shutil, 'disk_usage', lambda _: types.SimpleNamespace(
      free=int(1.5 * size)))  # room for one more
  for step in (2, 3):
    checkpoints.save(manager, step)
  warnings = [r.getMessage() for r in caplog.records if 'free in' in r.getMessage()]
  assert warnings == [f'only 1.8 MB free in {tmp_path}, less than twice the last checkpoint '
                      f'({tmp_path}/ckpt-1, 1.2 MB): free space before the disk fills up']


def test_a_save_that_fills_the_disk_removes_its_partial_files_and_names_the_last_checkpoint(
    tmp_path, monkeypatch):
  from configs.errors import UserError  # pylint: disable=g-import-not-at-top
  from runner import checkpoints  # pylint: disable=g-import-not-at-top
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(weights=tf.Variable(tf.zeros([4]))),
                                       str(tmp_path), max_to_keep=5, checkpoint_name='model.ckpt')
  checkpoints.save(manager, 1)
  save = tf.train.CheckpointManager.save

  def fill_the_disk(self, checkpoint_number=None, **kwargs):
    if checkpoint_number != 2:
      return save(self, checkpoint_number=checkpoint_number, **kwargs)
    partial = tmp_path / 'model.ckpt-2_temp'  # what TensorFlow's saver had written so far
    partial.mkdir()
    (partial / 'part-00000-of-00001.data-00000-of-00001.tempstate1').write_bytes(b'x' * 1000)
    raise tf.errors.ResourceExhaustedError(None, None, f'{partial}/part-00000-of-00001; No space '
                                           'left on device [Op:SaveV2]')

  monkeypatch.setattr(tf.train.CheckpointManager, 'save', fill_the_disk)
  with pytest.raises(UserError, match='while saving checkpoint 2 to .*; the last complete '
                     'checkpoint is 1; free space'):
    checkpoints.save(manager, 2)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'checkpoint', 'model.ckpt-1.data-00000-of-00001', 'model.ckpt-1.index']
