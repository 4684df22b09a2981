"""Importing the original code's checkpoint reproduces its recorded outputs and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from configs import UserError, make_hparams
from configs.spec import DatasetSpec
from layers import correct_and_almost, model_losses
from models import build_model, import_tf1_checkpoint, is_tf1_checkpoint
from models.tf1_import import chw_to_hwc_columns
from tests.conftest import BASELINE_ORACLE_DIR, ORACLE_DIR

CHECKPOINT = str(ORACLE_DIR / 'model.ckpt-0')
MNIST = DatasetSpec('mnist', 28, 28, 1, 10)
ORACLE_OVERRIDES = 'num_prime_capsules=2,remake=false'


@pytest.fixture
def oracle_model():
  model = build_model('capsule', make_hparams('mnist', ORACLE_OVERRIDES), MNIST)
  assert import_tf1_checkpoint(CHECKPOINT, model) == 0
  return model


def oracle_batch(oracle):
  images = tf.constant(oracle['input_images'].reshape(-1, 28, 28, 1))
  labels = tf.constant(oracle['input_labels'], tf.float32)
  return {'images': images, 'labels': labels, 'recons_image': images,
          'recons_label': tf.argmax(labels, 1, output_type=tf.int32)}


def variables_by_original_name(model):
  return {'conv1/weights': model.conv1.kernel, 'conv1/biases': model.conv1.bias,
          'conv_capsule1/weights': model.primary.kernel,
          'conv_capsule1/biases': model.primary.bias,
          'capsule2/weights': model.classes.kernel, 'capsule2/biases': model.classes.bias}


def test_imported_checkpoint_reproduces_logits_loss_and_gradients(oracle_model, oracle):
  batch = oracle_batch(oracle)
  variables = variables_by_original_name(oracle_model)
  with tf.GradientTape() as tape:
    outputs = oracle_model(batch)
    loss = model_losses(batch, outputs, 'margin')['total']
  np.testing.assert_allclose(outputs['logits'].numpy(), oracle['expected_logits'], atol=1e-5,
                             rtol=0)
  np.testing.assert_allclose(loss.numpy(), oracle['expected_total_loss'], rtol=1e-4)
  grads = tape.gradient(loss, list(variables.values()))
  for (name, variable), grad in zip(variables.items(), grads):
    expected = oracle[f'grad:{name}'].reshape(variable.shape)
    relative = np.abs(grad.numpy() - expected).max() / np.abs(expected).max()
    assert relative <= 1e-4, name
  correct, almost = correct_and_almost(batch['labels'], outputs['logits'])
  assert np.sum(correct) == oracle['expected_correct']  # counts, as the original's correct_sum
  assert np.sum(almost) == oracle['expected_almost']


def assert_matches_oracle(model, batch, variables, oracle, stored_layout=lambda name, g: g):
  """Logits within 1e-5 of their largest magnitude, loss and every gradient within 1e-4 (of
  a large gradient, the rows `rows:NAME` of it as [-1, last axis] that the oracle keeps)."""
  with tf.GradientTape() as tape:
    outputs = model(batch)
    loss = model_losses(batch, outputs, 'margin')['total']
  expected = oracle['expected_logits']
  assert np.abs(outputs['logits'].numpy() - expected).max() <= 1e-5 * np.abs(expected).max()
  np.testing.assert_allclose(loss.numpy(), oracle['expected_total_loss'], rtol=1e-4)
  grads = tape.gradient(loss, list(variables.values()))
  for name, grad in zip(variables, grads):
    expected = oracle[f'grad:{name}']
    got = stored_layout(name, grad.numpy())
    got = got.reshape(-1, got.shape[-1])[oracle.get(f'rows:{name}', slice(None))]
    got = got.reshape(expected.shape)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max(), name


def test_imported_original_baseline_reproduces_logits_loss_and_gradients(baseline_oracle):
  model = build_model('baseline', make_hparams('baseline'), MNIST)
  assert import_tf1_checkpoint(str(BASELINE_ORACLE_DIR / 'model.ckpt-0'), model) == 0
  variables = {'conv1/weights': model.conv1.kernel, 'conv1/biases': model.conv1.bias,
               'conv2/weights': model.conv2.kernel, 'conv2/biases': model.conv2.bias,
               'fc1/weights': model.fc1.kernel, 'fc1/biases': model.fc1.bias,
               'softmax_layer/weights': model.logits_layer.kernel,
               'softmax_layer/biases': model.logits_layer.bias}

  def nchw_rows(name, grad):  # our fc1 rows are (row, col, channel); the original's NCHW
    if name != 'fc1/weights':
      return grad
    return grad.reshape(4, 4, 256, 1024).transpose(2, 0, 1, 3).reshape(4096, 1024)

  assert_matches_oracle(model, oracle_batch(baseline_oracle), variables, baseline_oracle,
                        nchw_rows)


def test_original_baseline_checkpoint_refuses_the_capsule_model():
  model = build_model('capsule', make_hparams('mnist', ORACLE_OVERRIDES), MNIST)
  with pytest.raises(UserError, match='baseline.*--model=baseline'):
    import_tf1_checkpoint(str(BASELINE_ORACLE_DIR / 'model.ckpt-0'), model)


def test_chw_to_hwc_columns_moves_channels_last():
  chw = np.arange(2 * 3 * 4).reshape(1, 2 * 3 * 4)  # value = c * 12 + row * 4 + col
  hwc = chw_to_hwc_columns(chw, height=3, width=4, depth=2).reshape(3, 4, 2)
  assert hwc[2, 1, 1] == 1 * 12 + 2 * 4 + 1
  assert hwc[0, 3, 0] == 3


def _write_tf1_checkpoint(prefix, tensors):
  """A name-based checkpoint as the original's tf.train.Saver writes it."""
  names = sorted(tensors)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[''] * len(names),
                    tensors=[tf.constant(tensors[n]) for n in names])


def test_imported_two_channel_decoder_outputs_pixels_in_our_order(tmp_path):
  spec = DatasetSpec('norb', 24, 24, 2, 5)
  hparams = make_hparams('mnist', 'conv1_filters=4,num_prime_capsules=2')
  model = build_model('capsule', hparams, spec)
  rng = np.random.default_rng(0)
  tensors = {'global_step': np.int64(7)}
  for name, variable in variables_by_original_name(model).items():
    tensors[name] = rng.normal(size=variable.shape).astype(np.float32)
  tensors['conv_capsule1/biases'] = tensors['conv_capsule1/biases'][:, :, None, None]
  sizes = [(80, 512), (512, 1024), (1024, 24 * 24 * 2)]
  for i, (rows, cols) in enumerate(sizes):
    tensors[f'recons/recons_{i + 1}/weights'] = rng.normal(0, 0.05, (rows, cols)).astype('f4')
    tensors[f'recons/recons_{i + 1}/biases'] = rng.normal(0, 0.05, cols).astype('f4')
  _write_tf1_checkpoint(str(tmp_path / 'model.ckpt-7'), tensors)
  assert import_tf1_checkpoint(str(tmp_path / 'model.ckpt-7'), model) == 7

  capsules = rng.normal(size=(3, 5, 16)).astype(np.float32)
  targets = np.array([0, 4, 2], np.int32)
  net = (capsules * np.eye(5, dtype=np.float32)[targets][:, :, None]).reshape(3, 80)
  for i in (1, 2, 3):  # the original's decoder, by hand: its pixels come out (channel, row, col)
    net = net @ tensors[f'recons/recons_{i}/weights'] + tensors[f'recons/recons_{i}/biases']
    net = np.maximum(net, 0) if i < 3 else 1 / (1 + np.exp(-net))
  original_hwc = net.reshape(3, 2, 24, 24).transpose(0, 2, 3, 1)
  ours = model.decoder(tf.constant(capsules), tf.constant(targets)).numpy()
  np.testing.assert_allclose(ours.reshape(3, 24, 24, 2), original_hwc, rtol=1e-4, atol=1e-5)


def test_imported_checkpoint_can_continue_training(oracle_model, oracle):
  import keras  # pylint: disable=g-import-not-at-top
  batch = oracle_batch(oracle)
  optimizer = keras.optimizers.Adam(1e-4)
  losses = []
  for _ in range(3):
    with tf.GradientTape() as tape:
      loss = model_losses(batch, oracle_model(batch), 'margin')['total']
    optimizer.apply_gradients(zip(tape.gradient(loss, oracle_model.trainable_variables),
                                  oracle_model.trainable_variables))
    losses.append(float(loss))
  assert losses[-1] < losses[0]


def test_checkpoint_kind_is_detected():
  assert is_tf1_checkpoint(CHECKPOINT)
  assert not is_tf1_checkpoint(str(ORACLE_DIR / 'no-such-checkpoint'))


def test_mismatched_prime_capsules_names_variable_shapes_and_fitting_override():
  model = build_model('capsule', make_hparams('mnist', 'remake=false,conv1_filters=256'), MNIST)
  with pytest.raises(UserError) as error:
    import_tf1_checkpoint(CHECKPOINT, model)
  message = str(error.value)
  assert 'conv_capsule1/weights has shape [9, 9, 256, 16]' in message
  assert 'expects [9, 9, 256, 256]' in message
  assert '--hparams_override=num_prime_capsules=2' in message


def test_decoder_mismatch_suggests_remake_false():
  model = build_model('capsule', make_hparams('mnist', 'num_prime_capsules=2'), MNIST)
  with pytest.raises(UserError, match=r'has no variable recons/recons_1/weights.*remake=false'):
    import_tf1_checkpoint(CHECKPOINT, model)


def test_missing_checkpoint_is_named(tmp_path):
  model = build_model('capsule', make_hparams('mnist', ORACLE_OVERRIDES), MNIST)
  with pytest.raises(UserError, match=f'cannot read checkpoint {tmp_path}/missing'):
    import_tf1_checkpoint(str(tmp_path / 'missing'), model)
