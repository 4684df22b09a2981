"""Reconstruction decoder: rebuilds the input image from the target's class capsule."""

import keras
import tensorflow as tf


class Decoder(keras.layers.Layer):
  """Masks all but the target capsule, then 512 ReLU -> 1024 ReLU -> pixels sigmoid.

  Inputs: capsules [batch, classes, atoms] and target classes int [batch].
  Output: reconstructed pixels [batch, num_pixels]. Call it once per target to share weights.
  """

  def __init__(self, num_pixels, hidden_sizes=(512, 1024), **kwargs):
    super().__init__(**kwargs)
    if num_pixels < 1:
      raise ValueError(f'num_pixels must be positive, got {num_pixels}')
    self.num_pixels, self.hidden_sizes = num_pixels, tuple(hidden_sizes)
    dense = dict(kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1),
                 bias_initializer=keras.initializers.Constant(0.1))
    self.hidden = []
    for i, size in enumerate(self.hidden_sizes):
      layer = keras.layers.Dense(size, activation='relu', name=f'recons_{i + 1}', **dense)
      setattr(self, f'hidden_{i + 1}', layer)  # an attribute: TF checkpoints skip list items
      self.hidden.append(layer)
    self.pixels = keras.layers.Dense(num_pixels, activation='sigmoid',
                                     name=f'recons_{len(self.hidden_sizes) + 1}', **dense)

  def call(self, capsules, targets):
    mask = tf.one_hot(targets, capsules.shape[1], dtype=capsules.dtype)
    net = tf.reshape(capsules * mask[:, :, None], [-1, capsules.shape[1] * capsules.shape[2]])
    for layer in self.hidden:
      net = layer(net)
    return self.pixels(net)

  def get_config(self):
    return {**super().get_config(), 'num_pixels': self.num_pixels,
            'hidden_sizes': self.hidden_sizes}
