"""Losses and accuracy counts of the 2017 code, as pure functions of tensors.

Shapes: logits and labels [batch, classes] (labels one-hot, or the sum of two one-hots for two
targets); images and reconstructions [batch, pixels].
"""

import tensorflow as tf


def margin_loss(labels, logits, margin=0.4, downweight=0.5):
  """Per-class margin loss: m+ = 0.9, m- = 0.1 as 0.5 +/- 0.4, absent classes down-weighted."""
  centered = logits - 0.5
  positive = labels * tf.cast(centered < margin, logits.dtype) * tf.square(centered - margin)
  negative = (1 - labels) * tf.cast(centered > -margin, logits.dtype) * tf.square(centered + margin)
  return 0.5 * positive + downweight * 0.5 * negative


def classification_loss(labels, logits, loss_type, num_targets=1):
  """Batch-mean classification loss of `loss_type` (margin | softmax | sigmoid), a scalar."""
  logits = tf.cast(logits, tf.float32)
  if loss_type == 'margin':
    return tf.reduce_mean(margin_loss(labels, logits))
  if loss_type == 'softmax':
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
  if loss_type == 'sigmoid':
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=labels / num_targets, logits=logits))
  raise ValueError(f'unknown loss_type {loss_type!r}; expected margin, softmax or sigmoid')


def reconstruction_loss(images, reconstructions, balance_factor=0.0005):
  """Sum of squared pixel errors per image, batch mean, times `balance_factor`."""
  images = tf.reshape(tf.cast(images, tf.float32), [tf.shape(images)[0], -1])
  errors = tf.square(tf.cast(reconstructions, tf.float32) - images)
  return balance_factor * tf.reduce_mean(tf.reduce_sum(errors, axis=-1))


def correct_and_almost(labels, logits, num_targets=1):
  """Per-example booleans: every target in the top-k logits (correct); at least one (almost)."""
  _, targets = tf.math.top_k(labels, k=num_targets)
  _, predictions = tf.math.top_k(logits, k=num_targets)
  hits = tf.reduce_any(targets[:, :, None] == predictions[:, None, :], axis=2)
  num_hits = tf.reduce_sum(tf.cast(hits, tf.int32), axis=1)
  return num_hits == num_targets, num_hits > 0


def model_losses(batch, outputs, loss_type, num_targets=1):
  """Every loss term of a model's outputs and their sum `total`, a dict of scalars.

  `outputs` has `logits` and, with the decoder on, `reconstructions` (one per target, matched
  to batch `recons_image` and then `spare_image`).
  """
  terms = {'classification': classification_loss(batch['labels'], outputs['logits'], loss_type,
                                                  num_targets)}
  images = ('recons_image', 'spare_image')
  for name, reconstruction in zip(images, outputs.get('reconstructions', ())):
    terms['reconstruction' if name == 'recons_image' else 'reconstruction_spare'] = (
        reconstruction_loss(batch[name], reconstruction))
  terms['total'] = tf.add_n(list(terms.values()))
  return terms
