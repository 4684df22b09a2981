"""The training loop: its learning-rate schedule, and that it learns (orbit's trainer test)."""

import re

import numpy as np

from configs import HParams
from runner.training import MIN_LEARNING_RATE, learning_rate
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
  """A small capsule net trained 200 steps on the packaged 4,000 real MNIST digits: its loss
  falls and it classifies the 1,000 test digits far above chance (10%; it gets about 92%)."""
  common = ['--data_dir=builtin', f'--summary_dir={tmp_path}', '--max_steps=200', '--seed=1',
            '--hparams_override=conv1_filters=16,num_prime_capsules=4,remake=false']
  cli.run(*common, '--batch_size=64', '--log_every=25')
  losses = [v for _, v in cli.scalars(tmp_path / 'train')['loss/total']]
  assert len(losses) == 8 and losses[-1] < losses[0] / 2
  done = cli.run(*common, '--train=false')
  wrong, percent = re.search(r'Total wrong predictions: (\d+), wrong percent: ([\d.]+)%\n',
                             done.stdout).groups()
  assert float(percent) == 100 * int(wrong) / 1000
  assert int(wrong) < 200, f'test accuracy {100 - float(percent)}% after 200 steps'
  assert cli.scalars(tmp_path / 'test')['correct'] == [(200, 1000 - int(wrong))]
