"""Runs survive SIGKILL and SIGTERM, stop cleanly on a non-finite loss, and repeat exactly."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests import cli


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return cli.tiny_mnist_dir(tmp_path_factory.mktemp('data'))


def start(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.Popen([sys.executable, str(cli.ROOT / 'experiment.py'), *map(str, args)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_checkpoint(train_dir, at_least, process, timeout=120):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    latest = tf.train.latest_checkpoint(str(train_dir))
    if latest and int(latest.rsplit('-', 1)[1]) >= at_least:
      return
    assert process.poll() is None, process.communicate()[1][-2000:]
    time.sleep(0.05)
  raise AssertionError(f'no checkpoint >= {at_least} in {train_dir}')


def resumed_step(stderr):
  return int(re.search(r'resumed from \S+ at step (\d+)', stderr).group(1))


def train_args(data_dir, run_dir, max_steps, *extra):
  return [f'--data_dir={data_dir}', f'--summary_dir={run_dir}', cli.TINY, '--batch_size=4',
          '--save_step=1', '--log_every=1', f'--max_steps={max_steps}', *extra]


def test_sigkill_at_any_moment_resumes_from_the_last_complete_checkpoint(data_dir, tmp_path):
  rng = np.random.default_rng(0)
  step = 0
  for attempt in range(3):
    process = start(*train_args(data_dir, tmp_path, 1000))
    wait_for_checkpoint(tmp_path / 'train', step + 1, process)
    time.sleep(rng.uniform(0, 0.5))  # anywhere in a step or in a save
    process.kill()
    _, stderr = process.communicate()
    if attempt:
      assert resumed_step(stderr) == step
    latest = tf.train.latest_checkpoint(str(tmp_path / 'train'))
    tf.train.load_checkpoint(latest)  # complete and readable
    step = int(latest.rsplit('-', 1)[1])
  done = cli.run(*train_args(data_dir, tmp_path, step + 1))
  assert resumed_step(done.stderr) == step
  assert (tmp_path / 'train' / f'model.ckpt-{step + 1}.index').exists()


def test_sigterm_saves_the_current_step_and_the_rerun_continues(data_dir, tmp_path):
  process = start(*train_args(data_dir, tmp_path, 1000, '--save_step=1000'))
  while 'step 2/1000' not in (line := process.stderr.readline()):
    assert line or process.poll() is None, 'training ended early'
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signal.SIGTERM
  step = int(re.search(r'stopped by signal 15 at step (\d+)', stderr).group(1))
  assert step >= 2 and (tmp_path / 'train' / f'model.ckpt-{step}.index').exists()
  done = cli.run(*train_args(data_dir, tmp_path, step + 1))
  assert resumed_step(done.stderr) == step


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(data_dir, tmp_path):
  args = train_args(data_dir, tmp_path, 2)
  cli.run(*args)
  huge = cli.TINY + ',learning_rate=1e30'
  done = cli.run(*[a if a != cli.TINY else huge for a in args[:-1]], '--max_steps=50',
                 check=False)
  assert done.returncode == 2
  error = [l for l in done.stderr.splitlines() if l.startswith('error:')][0]
  step = int(re.search(r'loss is not finite at step (\d+)', error).group(1))
  assert step > 2 and f'model.ckpt-{step - 1}' in error
  reader = tf.train.load_checkpoint(str(tmp_path / 'train' / f'model.ckpt-{step - 1}'))
  weights = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
             if k.startswith('model/') and 'OPTIMIZER' not in k]
  assert weights and all(np.all(np.isfinite(w)) for w in weights)


def test_seed_with_deterministic_gives_identical_losses_in_any_loop_size(data_dir, tmp_path):
  losses = []
  for name, steps_per_loop in (('a', 1), ('b', 4)):
    cli.run(*train_args(data_dir, tmp_path / name, 6, '--seed=7', '--deterministic',
                        '--log_every=3', '--save_step=6', f'--steps_per_loop={steps_per_loop}'))
    losses.append(cli.scalars(tmp_path / name / 'train')['loss/total'])
  assert [s for s, _ in losses[0]] == [3, 6]
  assert losses[0] == losses[1]


def test_continuous_evaluation_beside_training_sees_each_checkpoint_once(data_dir, tmp_path):
  trainer = start(*train_args(data_dir, tmp_path, 8))
  evaluator = start(*train_args(data_dir, tmp_path, 8, '--train=false',
                                '--eval_timeout_secs=120'))
  _, train_err = trainer.communicate(timeout=300)
  _, eval_err = evaluator.communicate(timeout=300)
  assert trainer.returncode == 0, train_err[-2000:]
  assert evaluator.returncode == 0, eval_err[-2000:]
  steps = [s for s, _ in cli.scalars(tmp_path / 'test')['wrong']]
  assert steps == sorted(set(steps)) and steps[-1] == 8
