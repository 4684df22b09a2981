"""Model shapes, parameter counts, finiteness and the registry."""

import numpy as np
import pytest
import tensorflow as tf

from configs import HParams, UserError, make_hparams
from configs.spec import DatasetSpec
from layers import model_losses
from models import build_model
from models.registry import zeros_batch

MNIST = DatasetSpec('mnist', 28, 28, 1, 10)


def num_params(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def test_default_mnist_capsule_model_has_the_papers_parameter_counts():
  assert num_params(build_model('capsule', HParams(), MNIST)) == 8_215_728
  assert num_params(build_model('capsule', HParams(remake=False), MNIST)) == 6_804_384


def test_original_baseline_has_its_parameter_count_with_valid_padding():
  conv1, conv2 = 5 * 5 * 1 * 512 + 512, 5 * 5 * 512 * 256 + 256
  fc1, out = 4 * 4 * 256 * 1024 + 1024, 1024 * 10 + 10  # 28 -conv-> 24 -pool-> 12 -> 8 -> 4
  assert conv1 + conv2 + fc1 + out == 7_495_946
  assert num_params(build_model('baseline', make_hparams('baseline'), MNIST)) == 7_495_946


def test_original_baseline_initialisers_are_its_stddevs():
  model = build_model('baseline', HParams(), MNIST)
  for variable, stddev in ((model.conv2.kernel, 0.05), (model.fc1.kernel, 0.1)):
    values = variable.numpy()
    assert abs(values.std() - stddev * 0.88) < 0.1 * stddev  # truncated at 2 sigma: 0.88 sigma
    assert np.abs(values).max() <= 2 * stddev
  np.testing.assert_array_equal(model.fc1.bias.numpy(), np.full(1024, 0.1, np.float32))


def test_paper_baseline_has_35_4m_parameters():
  convs = (5 * 5 * 1 * 256 + 256) + (5 * 5 * 256 * 256 + 256) + (5 * 5 * 256 * 128 + 128)
  fcs = (28 * 28 * 128 * 328 + 328) + (328 * 192 + 192) + (192 * 10 + 10)
  assert convs + fcs == 35_445_522
  model = build_model('paper_baseline', make_hparams('paper_baseline'), MNIST)
  assert num_params(model) == 35_445_522


def test_a_models_own_preset_is_its_default_and_an_explicit_choice_wins():
  """--model=paper_baseline alone is the paper's network, as experiment.py makes its hparams."""
  paper = build_model('paper_baseline', make_hparams(None, '', 'paper_baseline'), MNIST)
  assert num_params(paper) == 35_445_522 and paper.hparams.padding == 'SAME'
  valid = build_model('paper_baseline', make_hparams(None, 'padding=VALID', 'paper_baseline'),
                      MNIST)
  assert num_params(valid) == 13_277_970
  assert make_hparams('mnist', '', 'paper_baseline') == HParams()
  assert make_hparams(None, '', 'baseline') == make_hparams('baseline')
  assert make_hparams(None, '', 'capsule') == HParams()


def test_paper_baseline_drops_out_in_training_only():
  model = build_model('paper_baseline', make_hparams('paper_baseline'), MNIST)
  batch = zeros_batch(MNIST, batch_size=2)
  batch['images'] = tf.random.stateless_uniform([2, 28, 28, 1], [1, 2])
  np.testing.assert_array_equal(model(batch)['logits'], model(batch)['logits'])
  assert not np.allclose(model(batch, training=True)['logits'], model(batch)['logits'])


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
  with pytest.raises(UserError, match="unknown model 'capsnet'; expected one of: baseline, "
                                      "capsule, paper_baseline"):
    build_model('capsnet', HParams(), MNIST)


def test_quickstart_preset_is_a_small_model_with_the_decoder():
  model = build_model('capsule', make_hparams('quickstart'), MNIST)
  decoder = (160 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
  assert num_params(model.decoder) == decoder == 1_411_344  # shows reconstructions
  assert num_params(model) - decoder < 1_000_000


@pytest.mark.parametrize('name, preset', [('capsule', 'quickstart'), ('baseline', 'baseline'),
                                          ('paper_baseline', 'paper_baseline')])
def test_every_weight_survives_the_training_checkpoint_into_a_fresh_model(tmp_path, name,
                                                                          preset):
  """As training saves (model, optimizer, step) and evaluation restores the model alone: a
  layer the checkpoint does not track (say, one kept only in a list) would come back random."""
  import keras  # pylint: disable=g-import-not-at-top
  from configs import RunConfig  # pylint: disable=g-import-not-at-top
  from runner import checkpoints  # pylint: disable=g-import-not-at-top
  small = ('conv1_filters=8,num_prime_capsules=2' if name == 'capsule' else '')
  hparams = make_hparams(preset, small)
  spec = DatasetSpec('mnist', 20, 20, 1, 3) if name == 'paper_baseline' else MNIST
  trained = build_model(name, hparams, spec)
  for variable in trained.trainable_variables:
    variable.assign(tf.random.stateless_normal(variable.shape, [1, 2]))
  optimizer = keras.optimizers.Adam()
  optimizer.build(trained.trainable_variables)
  step = tf.Variable(5, dtype=tf.int64)
  path = tf.train.Checkpoint(model=trained, optimizer=optimizer, step=step).save(
      str(tmp_path / 'model.ckpt'))
  fresh = build_model(name, hparams, spec)
  assert checkpoints.restore_model(fresh, path, RunConfig(hparams=hparams, model=name)) == 5
  assert len(fresh.trainable_variables) == len(trained.trainable_variables)
  for restored, saved in zip(fresh.trainable_variables, trained.trainable_variables):
    np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
