"""Every dataset's image preparation: training augmentations from one vocabulary (--augment; the
dataset's own list with --distort), the central crop of the test split, scaling or
standardization; batched, each image drawing its own values (docs/data.md "Augmentation")."""

import functools
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

_MAX_ANGLE = np.deg2rad(15.0)  # rotate's range, as the original MNIST distortion
DIGIT_CROP = 4  # augment 'crop' of digits takes 28 -> 24, as the original


def crop(images, seed, size: Tuple[int, int]):
  """A random window of `size` (height, width) of each image [B, H, W, C]."""
  shape, seeds = tf.shape(images), tf.random.experimental.stateless_split(seed, 2)
  windows = []
  for axis in (1, 2):
    start = tf.random.stateless_uniform([shape[0]], seeds[axis - 1], 0,
                                        shape[axis] - size[axis - 1] + 1, tf.int32)
    windows.append(start[:, None] + tf.range(size[axis - 1]))
  rows = tf.gather(images, windows[0], axis=1, batch_dims=1)
  return tf.gather(rows, windows[1], axis=2, batch_dims=1)


def flip(images, seed):
  """Each image mirrored left-right or not."""
  flipped = tf.random.stateless_uniform(tf.shape(images)[:1], seed) < 0.5
  return tf.where(flipped[:, None, None, None], tf.reverse(images, [2]), images)


def brightness(images, seed, max_delta: float = 63.0):
  """One delta in [-max_delta, max_delta) of 0..255 added to all of an image (no clipping)."""
  delta = tf.random.stateless_uniform(tf.shape(images)[:1], seed, -max_delta, max_delta)
  return images + delta[:, None, None, None]


def contrast(images, seed, lower: float = 0.2, upper: float = 1.8):
  """Each channel's deviation from its mean scaled by one factor in [lower, upper) per image."""
  factor = tf.random.stateless_uniform(tf.shape(images)[:1], seed, lower, upper)
  factor = factor[:, None, None, None]
  mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
  return images * factor + mean * (1 - factor)


def rotate(images, seed, angles=None):
  """Each image turned about its centre by an angle within +-15 degrees (or `angles` [B],
  radians), nearest pixel, zero fill."""
  if angles is None:
    angles = tf.random.stateless_uniform(tf.shape(images)[:1], seed, -_MAX_ANGLE, _MAX_ANGLE)
  height, width = images.shape[1], images.shape[2]
  cy, cx = (height - 1) / 2, (width - 1) / 2
  cos, sin, zeros = tf.cos(angles), tf.sin(angles), tf.zeros_like(angles)
  # Maps each output pixel (x, y) to the input pixel it samples.
  transforms = tf.stack([cos, -sin, cx - cx * cos + cy * sin,
                         sin, cos, cy - cx * sin - cy * cos, zeros, zeros], axis=1)
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=images, transforms=transforms, output_shape=[height, width], fill_value=0.0,
      interpolation='NEAREST', fill_mode='CONSTANT')


DISTORTIONS = {'crop': crop, 'flip': flip, 'brightness': brightness, 'contrast': contrast,
               'rotate': rotate}  # datasets.AUGMENTATIONS names them


def prepare(images, seed=None, *, size: Tuple[int, int], names: Sequence[str] = (), pad: int = 0,
            standardize: bool = False):
  """Images [B, H, W, C] of 0..255 -> float32 [B, *size, C]: with a seed [2], the named
  distortions in order (the j-th draws from seed j of its stateless_split; `crop` pads by `pad`
  first); then the central `size` window; then standardized per image, or scaled to [0, 1]."""
  images = tf.cast(images, tf.float32)
  if seed is not None and names:
    seeds = tf.random.experimental.stateless_split(seed, len(names))
    for j, name in enumerate(names):
      if name != 'crop':
        images = DISTORTIONS[name](images, seeds[j])
        continue
      if pad:
        images = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
      images = crop(images, seeds[j], size)
  images = tf.image.resize_with_crop_or_pad(images, *size)
  if standardize:
    return tf.image.per_image_standardization(images)
  return images * np.float32(1 / 255)


def for_digits(height: int, width: int, names: Sequence[str]):
  """(size, prepare) of digits (MNIST, affNIST, KMNIST) of height x width: DIGIT_CROP pixels
  smaller with augment 'crop' (the test split centrally cropped), scaled to [0, 1]."""
  size = (height - DIGIT_CROP, width - DIGIT_CROP) if 'crop' in names else (height, width)
  return size, functools.partial(prepare, size=size, names=names)
