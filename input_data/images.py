"""Encoded images (PNG, JPEG, GIF, BMP, WebP) -> the builder's examples: what `folder` and
`tfds:` share (docs/data_own.md "Folders of images" and "Augmentation")."""

import functools
from typing import Tuple

import tensorflow as tf

from configs.errors import UserError
from input_data import augment, builder
from input_data.datasets import PRESET, VALIDATION_FRACTION, parse_augment, parse_size

CROP_PADDING = 4  # pixels; the usual CIFAR padding before a random crop


def held_out(options, n: int) -> int:
  """How many of n training examples validate=True holds out (validation_fraction of them)."""
  fraction = options.get('validation_fraction', VALIDATION_FRACTION)
  if not 0 < fraction < 1:
    raise UserError(f'{options.name.split(":")[0]}: validation_fraction must be in (0, 1), got '
                    f'{fraction!r}')
  return min(max(1, round(fraction * n)), n - 1)


def stored(encoded):
  """Encoded image bytes -> the image as stored: uint8 [H, W, C], a GIF's first frame."""
  return tf.io.decode_image(encoded, channels=0, expand_animations=False)


def decode(encoded, depth: int):
  """Encoded image bytes -> float32 0..255 [H, W, depth]: alpha dropped, gray <-> RGB converted."""
  image = tf.cast(stored(encoded), tf.float32)
  channels = tf.shape(image)[-1]
  image = image[..., :channels - (1 - channels % 2)]  # 2 -> 1, 4 -> 3 (drop alpha)
  convert = tf.image.rgb_to_grayscale if depth == 1 else tf.image.grayscale_to_rgb
  image = tf.cond(tf.equal(tf.shape(image)[-1], depth), lambda: image, lambda: convert(image))
  return tf.ensure_shape(image, [None, None, depth])


def resize(image, size: Tuple[int, int], mode: str):
  """[H, W, C] -> [height, width, C]: stretched (resize), fitted in with zero borders (pad) or
  covering it, centrally cropped (crop)."""
  height, width = size
  if mode == 'resize':
    return tf.image.resize(image, size, antialias=True)
  if mode == 'pad':
    return tf.image.resize_with_pad(image, height, width, antialias=True)
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = tf.reduce_max(tf.constant([height, width], tf.float32) / shape)
  cover = tf.cast(tf.math.ceil(shape * scale - 1e-3), tf.int32)
  image = tf.image.resize(image, cover, antialias=True)
  return tf.image.resize_with_crop_or_pad(image, height, width)


def examples(files: tf.data.Dataset, options, stored_size: Tuple[int, int], depth: int,
             num_classes: int, **facts) -> builder.Examples:
  """Examples {'encoded' or 'path', 'label'} of a build (builder.Options) for the builder,
  decoded after the order is chosen, brought to image_size (default: `stored_size`)."""
  name = options.name.split(':')[0]
  size = parse_size(name, options.get('image_size')) or tuple(stored_size)
  resize_mode, pad = options.get('resize_mode', 'resize'), options.get('crop_padding', CROP_PADDING)
  if not isinstance(pad, int) or pad < 0:
    raise UserError(f'{name}: crop_padding must be a non-negative int, got {pad!r}')
  cifar10 = parse_augment(name, options.get('augment')) == (PRESET,)

  def decode_one(example):
    encoded = example['encoded'] if 'encoded' in example else tf.io.read_file(example['path'])
    image = resize(decode(encoded, depth), size, resize_mode)
    return {'image': tf.ensure_shape(image, [*size, depth]),
            'label': tf.cast(example['label'], tf.int32)}

  # augment=cifar10: both splits centrally cropped to 3/4 and standardized, as CIFAR-10's
  output = (size[0] * 3 // 4, size[1] * 3 // 4) if cifar10 else size
  prepare = functools.partial(augment.prepare, size=output, names=options.augment,
                              pad=0 if cifar10 else pad, standardize=cifar10)
  return builder.Examples(files, prepare, (*output, depth), num_classes,
                          decode=decode_one, **facts)
