"""A straightforward TF2 Keras CapsNet: the reference row of the throughput benchmark.

Written the way most public TF2 ports are: Keras Conv2D layers, einsum votes, three routing
iterations, a masked decoder, margin loss, Adam, one tf.function step. Not used by the project.
"""

import keras
import tensorflow as tf


def _squash(s, axis=-1):
  norm2 = tf.reduce_sum(tf.square(s), axis=axis, keepdims=True)
  return norm2 / (1 + norm2) * s / tf.sqrt(norm2 + 1e-9)


class ReferenceCapsNet(keras.Model):

  def __init__(self, num_classes=10, pixels=784):
    super().__init__()
    self.conv1 = keras.layers.Conv2D(256, 9, activation='relu')
    self.primary = keras.layers.Conv2D(32 * 8, 9, strides=2)
    self.num_classes = num_classes
    self.decoder = keras.Sequential([keras.layers.Dense(512, activation='relu'),
                                     keras.layers.Dense(1024, activation='relu'),
                                     keras.layers.Dense(pixels, activation='sigmoid')])

  def build(self, input_shape):
    self.W = self.add_weight(shape=(1152, self.num_classes, 16, 8), initializer='random_normal')
    self.b = self.add_weight(shape=(self.num_classes, 16), initializer='zeros')

  def call(self, images, labels):
    u = _squash(tf.reshape(self.primary(self.conv1(images)), [-1, 1152, 8]))
    u_hat = tf.einsum('ijab,nib->nija', self.W, u)
    logits = tf.zeros(tf.shape(u_hat)[:3])
    for i in range(3):
      c = tf.nn.softmax(logits, axis=2)
      v = _squash(tf.einsum('nij,nija->nja', c, u_hat) + self.b)
      if i < 2:
        logits += tf.einsum('nija,nja->nij', u_hat, v)
    lengths = tf.norm(v, axis=-1)
    masked = tf.reshape(v * labels[:, :, None], [-1, self.num_classes * 16])
    return lengths, self.decoder(masked)


def make_train_step(model, optimizer):
  @tf.function
  def step(images, labels):
    with tf.GradientTape() as tape:
      lengths, recons = model(images, labels)
      margin = (labels * tf.square(tf.maximum(0., 0.9 - lengths))
                + 0.5 * (1 - labels) * tf.square(tf.maximum(0., lengths - 0.1)))
      loss = tf.reduce_mean(tf.reduce_sum(margin, 1)) + 0.0005 * tf.reduce_mean(
          tf.reduce_sum(tf.square(recons - tf.reshape(images, [tf.shape(images)[0], -1])), 1))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
  return step
