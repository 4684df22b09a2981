"""The patches-x-matmul convolution equals tf.nn.conv2d in value and gradient."""

import numpy as np
import pytest
import tensorflow as tf

from layers.convolution import conv2d


@pytest.mark.parametrize('padding', ['VALID', 'SAME'])
@pytest.mark.parametrize('shape, strides', [((2, 20, 20, 6), 2), ((3, 13, 11, 4), 2),
                                            ((2, 9, 9, 3), 1), ((2, 10, 12, 3), 2),
                                            ((1, 16, 16, 2), 3)])
def test_matmul_conv_matches_tf_conv_and_its_gradients(padding, shape, strides):
  inputs = tf.random.stateless_normal(shape, seed=[1, 2])
  kernel = tf.random.stateless_normal([5, 5, shape[-1], 7], seed=[3, 4])
  results = []
  for matmul in (False, True):
    with tf.GradientTape() as tape:
      tape.watch([inputs, kernel])
      outputs = conv2d(inputs, kernel, strides, padding, matmul=matmul)
      weights = tf.random.stateless_normal(outputs.shape, seed=[5, 6])
      loss = tf.reduce_sum(outputs * weights + tf.square(outputs))
    results.append([outputs] + tape.gradient(loss, [inputs, kernel]))
  for plain, fast in zip(*results):
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), rtol=1e-4,
                               atol=1e-4 * np.abs(plain.numpy()).max())


def test_conv_capsule_refuses_an_unknown_conv_impl():
  from layers import ConvCapsule  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="conv_impl must be conv or matmul, got 'fft'"):
    ConvCapsule(2, 8, kernel_size=9, strides=2, conv_impl='fft')