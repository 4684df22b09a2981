"""Figure 4 grids: each row moves one capsule dimension; the middle column is the plain output."""

import numpy as np
import tensorflow as tf

from configs import HParams
from configs.spec import DatasetSpec
from models import build_model
from models.registry import zeros_batch
from runner.perturb import DELTAS, perturbation_grid

from tests import cli


def test_grid_middle_column_is_the_plain_reconstruction():
  spec = DatasetSpec('mnist', 28, 28, 1, 10)
  model = build_model('capsule', HParams(conv1_filters=8, num_prime_capsules=2), spec)
  batch = zeros_batch(spec, batch_size=2)
  batch['images'] = batch['recons_image'] = tf.random.stateless_uniform([2, 28, 28, 1], [1, 1])
  batch['recons_label'] = tf.constant([4, 7])
  grid = perturbation_grid(model, batch, index=1)
  assert grid.shape == (16 * 28, len(DELTAS) * 28, 1) and DELTAS[5] == 0
  plain = model(batch)['reconstructions'][0][1].numpy().reshape(28, 28, 1)
  for row in range(16):
    np.testing.assert_allclose(grid[row * 28:(row + 1) * 28, 5 * 28:6 * 28], plain, atol=1e-6)
  assert not np.allclose(grid[:28, :28], plain, atol=1e-4)  # moving a dimension changes it


def test_perturb_flag_writes_png_and_tensorboard_image(tiny_run, tmp_path):
  run = tiny_run.copy_to(tmp_path / 'run')
  cli.run(*run.args, '--train=false', f'--checkpoint={run.dir}/train/model.ckpt-2', '--perturb')
  png = tf.io.decode_png(tf.io.read_file(str(run.dir / 'perturbation_0.png')))
  assert png.shape == (16 * 28, 11 * 28, 1)
  assert 'perturbation/0' in cli.tags(run.dir / 'test')
