"""2-D convolution, optionally as patches x matmul: much faster on CPUs for the primary capsules.

The primary-capsule convolution (9x9, stride 2, 256 -> 256 channels on a 20x20 map) is most of
a capsule network's FLOPs. On a CPU, TF's convolution kernels reach about half the matmul peak
for it, while gathering patches and running one big matmul (reusing the patches for the
filter gradient) gets close to peak. On GPUs cuDNN is faster: runner/devices.py picks per
device, from --conv_impl.
"""

import numpy as np
import tensorflow as tf


def conv2d(inputs, kernel, strides: int, padding: str, matmul: bool = False):
  """tf.nn.conv2d (NHWC, HWIO kernel); with `matmul`, computed as patches @ kernel."""
  if not matmul:
    return tf.nn.conv2d(inputs, kernel, strides, padding)
  return _patch_matmul_conv(inputs, kernel, strides, padding)


def _patch_indices(height, width, size, strides):
  """Flat pixel index of every (out_row, out_col, kernel_row, kernel_col) of a VALID conv."""
  rows = np.arange(0, height - size + 1, strides)[:, None] + np.arange(size)  # [out_h, size]
  cols = np.arange(0, width - size + 1, strides)[:, None] + np.arange(size)  # [out_w, size]
  flat = rows[:, None, :, None] * width + cols[None, :, None, :]  # [out_h, out_w, size, size]
  return flat.reshape(-1).astype(np.int32), len(rows), len(cols)


def _same_padding(length, size, strides):
  """TF's SAME padding (before, after) along one axis."""
  total = max((-(-length // strides) - 1) * strides + size - length, 0)
  return total // 2, total - total // 2


def _patch_matmul_conv(inputs, kernel, strides, padding):
  size, in_channels, out_channels = kernel.shape[0], kernel.shape[2], kernel.shape[3]

  @tf.custom_gradient
  def conv(inputs, kernel):
    padded = inputs
    if padding == 'SAME':
      padded = tf.pad(inputs, [[0, 0], _same_padding(inputs.shape[1], size, strides),
                               _same_padding(inputs.shape[2], size, strides), [0, 0]])
    _, height, width, _ = padded.shape
    # A gather of whole pixels (contiguous channel rows) is ~4x faster than extract_patches.
    indices, out_h, out_w = _patch_indices(height, width, size, strides)
    pixels = tf.reshape(padded, [-1, height * width, in_channels])
    flat_patches = tf.reshape(tf.gather(pixels, indices, axis=1),
                              [-1, size * size * in_channels])
    flat_kernel = tf.reshape(kernel, [-1, out_channels])
    outputs = tf.reshape(tf.matmul(flat_patches, flat_kernel), [-1, out_h, out_w, out_channels])

    def grad(d_outputs):
      flat_d = tf.reshape(d_outputs, [-1, out_channels])
      d_kernel = tf.reshape(tf.matmul(flat_patches, flat_d, transpose_a=True), tf.shape(kernel))
      d_inputs = tf.nn.conv2d_transpose(d_outputs, kernel, tf.shape(inputs), strides, padding)
      return d_inputs, d_kernel

    return outputs, grad

  return conv(inputs, kernel)
