"""The training loop: its learning-rate schedule, float16 loss scaling over replicas, steps per
call, and that it learns (orbit's trainer test)."""

import json
import re
import sys

import numpy as np
import pytest

from configs import HParams, RunConfig
from runner import training
from runner.train_step import MIN_LEARNING_RATE, learning_rate
from tests import cli


def test_learning_rate_decays_exponentially_with_the_global_step():
  hparams = HParams()  # 0.001, times 0.96 every 2,000 steps, not staircase
  for step in (0, 1000, 2000, 300000):
    np.testing.assert_allclose(float(learning_rate(hparams, step)), 0.001 * 0.96 ** (step / 2000),
                               rtol=1e-5)


def test_learning_rate_is_floored_at_one_millionth():
  hparams = HParams()
  # 0.001 * 0.96 ** (s / 2000) = 1e-6 at s = 2000 * ln(1000) / ln(1 / 0.96) = 338,436.
  assert MIN_LEARNING_RATE == 1e-6
  assert float(learning_rate(hparams, 338000)) > 1.008e-6
  assert float(learning_rate(hparams, 339000)) == np.float32(1e-6)  # 0.988e-6 decayed
  assert float(learning_rate(hparams, 10**7)) == np.float32(1e-6)


def test_the_learning_rate_written_by_training_stops_at_the_floor(tiny_data, tmp_path):
  """decay_steps=1, decay_rate=0.01: 1e-3 at step 0, 1e-5 at step 1, then 1e-7 -> 1e-6."""
  cli.run(f'--data_dir={tiny_data}', f'--summary_dir={tmp_path}',
          f'{cli.TINY},decay_steps=1,decay_rate=0.01', '--batch_size=4', '--max_steps=3',
          '--log_every=1')
  rates = cli.scalars(tmp_path / 'train')['learning_rate']
  assert [s for s, _ in rates] == [1, 2, 3]
  np.testing.assert_allclose(rates[0][1], 1e-5, rtol=1e-5)
  assert rates[1][1] == rates[2][1] == float(np.float32(1e-6))


def test_training_learns_to_classify_real_digits(tmp_path):
  """A small capsule net trained 100 steps on the packaged 4,000 real MNIST digits: its loss
  falls and it classifies the 1,000 test digits far above chance (10%; it gets about 87%)."""
  common = ['--data_dir=builtin', f'--summary_dir={tmp_path}', '--max_steps=100', '--seed=1',
            '--hparams_override=conv1_filters=16,num_prime_capsules=4,remake=false']
  _, done = cli.run_in_one_process([[*common, '--batch_size=64', '--log_every=5'],
                                    [*common, '--train=false']], check=True)
  losses = [v for _, v in cli.scalars(tmp_path / 'train')['loss/total']]
  assert len(losses) == 20 and losses[-1] < losses[0] / 2
  wrong, percent = re.search(r'Total wrong predictions: (\d+), wrong percent: ([\d.]+)%\n',
                             done.stdout).groups()
  assert float(percent) == 100 * int(wrong) / 1000
  assert int(wrong) < 200, f'test accuracy {100 - float(percent)}% after 100 steps'
  assert cli.scalars(tmp_path / 'test')['correct'] == [(100, 1000 - int(wrong))]


# Two logical CPUs (set before TensorFlow starts, hence its own process); a float16 optimizer
# gets gradients 0.5 x the loss scale on both replicas, but +inf on replica 1 alone in step 1.
_OVERFLOW_ON_REPLICA_1 = """
import json, numpy as np, tensorflow as tf
from configs import HParams
from runner.devices import split_cpu
from runner.train_step import make_optimizer
strategy = tf.distribute.MirroredStrategy(split_cpu(2))
with strategy.scope():
  kernel = tf.Variable(tf.ones([3]))
  optimizer = make_optimizer(HParams(), tf.Variable(0, dtype=tf.int64), 'float16')
  optimizer.build([kernel])

@tf.function
def train(overflow):
  def replica_step():
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    grad = tf.fill([3], optimizer.scale_loss(0.5))
    optimizer.apply_gradients([(tf.where(overflow & (replica == 1), np.inf, grad), kernel)])
  strategy.run(replica_step)

states = []
for overflow in (False, True, False):
  train(tf.constant(overflow))
  kernels = strategy.experimental_local_results(kernel)
  states.append({'scale': float(optimizer.dynamic_scale.numpy()),
                 'kernels': [v.numpy().tolist() for v in kernels]})
print(json.dumps(states))
"""


def test_float16_overflow_on_one_replica_skips_the_step_on_every_replica_and_halves_the_scale():
  done = cli.run_command([sys.executable, '-c', _OVERFLOW_ON_REPLICA_1], timeout=120)
  first, overflow, after = json.loads(done.stdout.splitlines()[-1])
  moved = 1 - 0.001  # Adam's first step moves each weight by the learning rate
  assert first['kernels'] == [[pytest.approx(moved)] * 3] * 2 and first['scale'] == 2.0 ** 15
  assert overflow['kernels'] == first['kernels']  # finite and unchanged, on both replicas
  assert overflow['scale'] == 2.0 ** 14
  assert after['scale'] == 2.0 ** 14 and after['kernels'][0] == after['kernels'][1]
  assert after['kernels'][0][0] == pytest.approx(moved - 0.001, abs=1e-4)  # it trains on


@pytest.mark.parametrize('gpu, steps_per_loop, steps', [
    (False, None, [1] * 10),  # CPUs: one step per call
    (True, None, [4, 2, 2, 2]),  # GPUs: up to the next log (every 4) or save (every 6)
    (True, 3, [3, 1, 2, 2, 2]),  # a given --steps_per_loop, bounded the same way
])
def test_steps_per_call_default_to_the_next_log_or_save_on_gpus_only(monkeypatch, gpu,
                                                                   steps_per_loop, steps):
  monkeypatch.setattr(training, 'has_gpu', lambda: gpu)
  config = RunConfig(max_steps=10, log_every=4, save_step=6, steps_per_loop=steps_per_loop)
  calls, current = [], 0
  while current < config.max_steps:
    calls.append(training._steps_to_boundary(current, config))  # pylint: disable=protected-access
    current += calls[-1]
  assert calls == steps
