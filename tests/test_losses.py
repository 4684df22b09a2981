"""Margin, cross-entropy and reconstruction losses and accuracy counts, computed by hand."""

import numpy as np
import tensorflow as tf

from layers import (classification_loss, correct_and_almost, margin_loss, model_losses,
                    reconstruction_loss)


def test_margin_loss_one_target_by_hand():
  labels = tf.constant([[1.0, 0.0, 0.0]])
  logits = tf.constant([[0.7, 0.05, 0.3]])
  # Present class: (0.9 - 0.7)^2 * 0.5; absent: 0.05 < 0.1 costs nothing, 0.3 costs
  # 0.5 * 0.5 * (0.3 - 0.1)^2. The batch mean runs over every element, as the original.
  per_class = [0.5 * 0.2**2, 0.0, 0.25 * 0.2**2]
  np.testing.assert_allclose(margin_loss(labels, logits).numpy()[0], per_class, atol=1e-7)
  np.testing.assert_allclose(classification_loss(labels, logits, 'margin').numpy(),
                             np.mean(per_class), rtol=1e-6)


def test_margin_loss_two_targets_by_hand():
  labels = tf.constant([[1.0, 1.0, 0.0, 0.0]])
  logits = tf.constant([[0.95, 0.5, 0.6, 0.0]])
  per_class = [0.0, 0.5 * 0.4**2, 0.25 * 0.5**2, 0.0]
  np.testing.assert_allclose(margin_loss(labels, logits).numpy()[0], per_class, atol=1e-7)


def test_softmax_and_sigmoid_losses_match_their_formulas():
  labels = np.array([[0.0, 1.0, 1.0]], np.float32)
  logits = np.array([[0.2, -1.0, 2.0]], np.float32)
  softmax = -(labels * (logits - np.log(np.exp(logits).sum()))).sum()
  np.testing.assert_allclose(classification_loss(labels, logits, 'softmax').numpy(), softmax,
                             rtol=1e-6)
  z = labels / 2  # two targets
  sigmoid = np.mean(np.maximum(logits, 0) - logits * z + np.log1p(np.exp(-np.abs(logits))))
  np.testing.assert_allclose(classification_loss(labels, logits, 'sigmoid', 2).numpy(), sigmoid,
                             rtol=1e-6)


def test_reconstruction_loss_is_scaled_batch_mean_of_squared_error_sums():
  images = tf.constant([[1.0, 0.0], [0.5, 0.5]])
  recons = tf.constant([[0.0, 0.0], [0.5, 1.5]])
  np.testing.assert_allclose(reconstruction_loss(images, recons).numpy(), 0.0005 * (1 + 1) / 2,
                             rtol=1e-6)


def test_model_losses_sum_one_reconstruction_term_per_target():
  batch = {'labels': tf.constant([[1.0, 1.0]]), 'recons_image': tf.ones([1, 1, 2, 1]),
           'spare_image': tf.zeros([1, 1, 2, 1])}
  outputs = {'logits': tf.constant([[0.95, 0.95]]),
             'reconstructions': [tf.zeros([1, 2]), tf.ones([1, 2])]}
  losses = model_losses(batch, outputs, 'margin', num_targets=2)
  np.testing.assert_allclose(losses['reconstruction'].numpy(), 0.001)
  np.testing.assert_allclose(losses['reconstruction_spare'].numpy(), 0.001)
  np.testing.assert_allclose(losses['total'].numpy(), 0.002, rtol=1e-6)


def test_correct_and_almost_counts():
  labels = tf.constant([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
  logits = tf.constant([[0.9, 0.8, 0.1], [0.9, 0.8, 0.1], [0.9, 0.8, 0.1]])
  correct, almost = correct_and_almost(labels, logits, num_targets=2)
  assert correct.numpy().tolist() == [True, False, False]
  assert almost.numpy().tolist() == [True, True, True]
  correct, almost = correct_and_almost(tf.constant([[0.0, 1.0], [1.0, 0.0]]),
                                       tf.constant([[0.2, 0.9], [0.2, 0.9]]))
  assert correct.numpy().tolist() == [True, False] and almost.numpy().tolist() == [True, False]
