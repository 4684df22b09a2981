"""2-D convolution, optionally as patches x matmul: much faster on CPUs for the primary capsules.

The primary-capsule convolution (9x9, stride 2, 256 -> 256 channels on a 20x20 map) is most of
a capsule network's FLOPs. On a CPU, TF's convolution kernels reach about half the matmul peak
for it, while extracting patches and running one big matmul (reusing the patches for the
filter gradient) gets close to peak. On GPUs cuDNN is faster, so 'auto' picks per device.
"""

import tensorflow as tf


def use_matmul_conv(impl: str) -> bool:
  """Resolves a conv implementation name ('auto' | 'conv' | 'matmul') to 'use matmul?'."""
  if impl not in ('auto', 'conv', 'matmul'):
    raise ValueError(f'conv implementation must be auto, conv or matmul, got {impl!r}')
  if impl == 'auto':
    return not tf.config.list_physical_devices('GPU')
  return impl == 'matmul'


def conv2d(inputs, kernel, strides: int, padding: str, matmul: bool = False):
  """tf.nn.conv2d (NHWC, HWIO kernel); with `matmul`, computed as patches @ kernel."""
  if not matmul:
    return tf.nn.conv2d(inputs, kernel, strides, padding)
  return _patch_matmul_conv(inputs, kernel, strides, padding)


def _patch_matmul_conv(inputs, kernel, strides, padding):
  size = kernel.shape[0]

  @tf.custom_gradient
  def conv(inputs, kernel):
    patches = tf.image.extract_patches(inputs, [1, size, size, 1], [1, strides, strides, 1],
                                       [1, 1, 1, 1], padding)
    out_shape = tf.concat([tf.shape(patches)[:3], [kernel.shape[-1]]], axis=0)
    flat_patches = tf.reshape(patches, [-1, patches.shape[-1]])
    flat_kernel = tf.reshape(kernel, [-1, kernel.shape[-1]])
    outputs = tf.reshape(tf.matmul(flat_patches, flat_kernel), out_shape)

    def grad(d_outputs):
      flat_d = tf.reshape(d_outputs, [-1, kernel.shape[-1]])
      d_kernel = tf.reshape(tf.matmul(flat_patches, flat_d, transpose_a=True), tf.shape(kernel))
      d_inputs = tf.nn.conv2d_transpose(d_outputs, kernel, tf.shape(inputs), strides, padding)
      return d_inputs, d_kernel

    return outputs, grad

  return conv(inputs, kernel)
