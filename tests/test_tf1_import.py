"""Importing the original code's checkpoint reproduces its recorded outputs and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from configs import UserError, make_hparams
from input_data import DatasetSpec
from layers import correct_and_almost, model_losses
from models import build_model, import_tf1_checkpoint, is_tf1_checkpoint
from tests.conftest import ORACLE_DIR

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
