"""Model shapes, parameter counts, finiteness and the registry."""

import numpy as np
import pytest
import tensorflow as tf

from configs import HParams, UserError, make_hparams
from input_data import DatasetSpec, zeros_batch
from layers import model_losses
from models import build_model

MNIST = DatasetSpec('mnist', 28, 28, 1, 10)


def num_params(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def test_default_mnist_capsule_model_has_the_papers_parameter_counts():
  assert num_params(build_model('capsule', HParams(), MNIST)) == 8_215_728
  assert num_params(build_model('capsule', HParams(remake=False), MNIST)) == 6_804_384


def test_baseline_parameter_count():
  conv1, conv2 = 5 * 5 * 1 * 512 + 512, 5 * 5 * 512 * 256 + 256
  fc1, out = 7 * 7 * 256 * 1024 + 1024, 1024 * 10 + 10
  assert num_params(build_model('baseline', HParams(), MNIST)) == conv1 + conv2 + fc1 + out


def conv_size(size, padding):
  return -(-size // 2) if padding == 'SAME' else (size - 8 + 1) // 2  # 9x9 stride 2 after 9x9


@pytest.mark.parametrize('height, depth, classes, targets', [
    (28, 1, 10, 1), (36, 1, 10, 2), (40, 1, 10, 1), (24, 3, 10, 1), (32, 2, 5, 1), (48, 2, 5, 1)])
@pytest.mark.parametrize('padding', ['VALID', 'SAME'])
def test_intermediate_shapes_for_every_dataset_input(height, depth, classes, targets, padding):
  spec = DatasetSpec('x', height, height, depth, classes, targets)
  hp = HParams(padding=padding, conv1_filters=16, num_prime_capsules=4)
  model = build_model('capsule', hp, spec)
  batch = zeros_batch(spec, batch_size=2)
  conv1 = height if padding == 'SAME' else height - 8
  primary = -(-conv1 // 2) if padding == 'SAME' else (conv1 - 9) // 2 + 1
  assert model.conv1(batch['images']).shape == (2, conv1, conv1, 16)
  out = model(batch)
  assert out['primary_capsules'].shape == (2, 4 * primary * primary, 8)
  assert out['capsules'].shape == (2, classes, 16)
  assert out['logits'].shape == (2, classes)
  assert [r.shape for r in out['reconstructions']] == [(2, height * height * depth)] * targets


def test_paper_primary_capsules_are_1152_of_8_atoms():
  out = build_model('capsule', HParams(), MNIST)(zeros_batch(MNIST))
  assert out['primary_capsules'].shape == (1, 1152, 8)


def test_all_zero_input_gives_finite_loss_and_gradients():
  model = build_model('capsule', HParams(conv1_filters=16, num_prime_capsules=4), MNIST)
  batch = zeros_batch(MNIST, batch_size=2)
  batch['labels'] = tf.one_hot([3, 7], 10)
  for layer in (model.conv1, model.primary, model.classes):  # all-zero activations everywhere
    for variable in layer.weights:
      variable.assign(tf.zeros_like(variable))
  with tf.GradientTape() as tape:
    loss = model_losses(batch, model(batch), 'margin')['total']
  grads = tape.gradient(loss, model.trainable_variables)
  assert np.isfinite(loss.numpy())
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_unknown_model_lists_registered_ones():
  with pytest.raises(UserError, match="unknown model 'capsnet'; expected one of: baseline, capsule"):
    build_model('capsnet', HParams(), MNIST)


def test_quickstart_preset_builds_a_small_model():
  assert num_params(build_model('capsule', make_hparams('quickstart'), MNIST)) < 1_000_000
