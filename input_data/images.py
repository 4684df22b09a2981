"""Encoded images (PNG, JPEG, GIF, BMP, WebP) -> batch dicts: what `folder` and `tfds:` share.

Decoded, alpha dropped, brought to `depth` channels, resized by `resize_mode`, scaled to [0, 1],
batched and augmented: docs/data_own.md "Folders of images" and "Augmentation".
"""

import dataclasses
import functools
from typing import Optional, Tuple

import tensorflow as tf

from configs.errors import UserError
from input_data import builder, cifar10
from input_data.datasets import (VALIDATION_FRACTION, check_resize_mode, parse_augment,
                                 parse_size)
from input_data.pipeline import (crop_or_distort, image_features, random_crop,
                                 random_flip_left_right)

CROP_PADDING = 4  # pixels; the usual CIFAR padding before a random crop


@dataclasses.dataclass(frozen=True)
class ImageOptions:
  """How images are brought to one shape and augmented."""
  size: Optional[Tuple[int, int]]  # (height, width); None: not known yet
  resize_mode: str
  channels: Optional[int]  # 1 or 3; None: detect
  augment: Tuple[str, ...]
  crop_padding: int
  distort: bool = True  # False: training gets the test split's processing (as cifar10's)

  def output_size(self) -> Tuple[int, int]:
    """(height, width) of the batches: the size, or 3/4 of it with 'cifar10'."""
    height, width = self.size
    return (height * 3 // 4, width * 3 // 4) if 'cifar10' in self.augment else (height, width)


def make_options(options) -> ImageOptions:
  """The image options of a build (builder.Options); UserError for a bad one."""
  name = options.name.split(':')[0]
  resize_mode, channels = options.get('resize_mode', 'resize'), options.get('channels')
  crop_padding = options.get('crop_padding', CROP_PADDING)
  check_resize_mode(name, resize_mode)
  if channels not in (None, 1, 3):
    raise UserError(f'{name}: channels must be 1 (grayscale), 3 (RGB) or None (detect), got '
                    f'{channels!r}')
  if not isinstance(crop_padding, int) or crop_padding < 0:
    raise UserError(f'{name}: crop_padding must be a non-negative int, got {crop_padding!r}')
  distort = options.own.get('distort')
  return ImageOptions(parse_size(name, options.get('image_size')), resize_mode, channels,
                      parse_augment(name, options.get('augment'), distort), crop_padding,
                      distort is not False)


def held_out(options, n: int) -> int:
  """How many of n training examples validate=True holds out: round(validation_fraction * n),
  at least 1, at most n - 1."""
  fraction = options.get('validation_fraction', VALIDATION_FRACTION)
  if not 0 < fraction < 1:
    raise UserError(f'{options.name.split(":")[0]}: validation_fraction must be in (0, 1), got '
                    f'{fraction!r}')
  return min(max(1, round(fraction * n)), n - 1)


def check_square(name: str, options: ImageOptions):
  """'crop' and 'cifar10' use pipeline.random_crop, which takes square windows."""
  height, width = options.size
  needs = [a for a in options.augment if a in ('crop', 'cifar10')]
  if needs and height != width:
    raise UserError(f'{name}: augment {needs[0]!r} needs square images, got {height}x{width}; '
                    'pass image_size=N')


def to_depth(image, depth: int):
  """float32 [H, W, 1..4] -> [H, W, depth]: alpha dropped, gray <-> RGB converted."""
  channels = tf.shape(image)[-1]
  image = image[..., :channels - (1 - channels % 2)]  # 2 -> 1, 4 -> 3 (drop alpha)
  is_gray = tf.equal(tf.shape(image)[-1], 1)
  if depth == 1:
    image = tf.cond(is_gray, lambda: image, lambda: tf.image.rgb_to_grayscale(image))
  else:
    image = tf.cond(is_gray, lambda: tf.image.grayscale_to_rgb(image), lambda: image)
  return tf.ensure_shape(image, [None, None, depth])


def decode(encoded, depth: int):
  """Encoded image bytes -> float32 0..255 [H, W, depth]."""
  image = tf.io.decode_image(encoded, channels=0, expand_animations=False)
  return to_depth(tf.cast(image, tf.float32), depth)


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


def augment_images(images, options: ImageOptions, seed):
  """Training augmentations of float32 [0, 1] images [B, H, W, C]; `seed`: int [2]."""
  seeds = tf.random.experimental.stateless_split(seed, 4)
  height = options.size[0]
  if 'cifar10' in options.augment:
    return crop_or_distort(images * 255.0, options.output_size()[0], cifar10.distort_images, seed)
  if 'crop' in options.augment:
    pad = options.crop_padding
    images = random_crop(tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]]), height,
                         seeds[0])
  if 'flip' in options.augment:
    images = random_flip_left_right(images, seeds[1])
  return images


def test_images(images, options: ImageOptions):
  """The test split's processing of float32 [0, 1] images [B, H, W, C]: with 'cifar10' the
  central crop, standardized; else none."""
  if 'cifar10' not in options.augment:
    return images
  return crop_or_distort(images * 255.0, options.output_size()[0], cifar10.distort_images)


def _features(batch, seed=None, *, options: ImageOptions, num_classes: int):
  images = batch['image']
  if seed is not None:
    images = augment_images(images, options, seed)
  else:
    images = test_images(images, options)
  return image_features(images, batch['label'], num_classes)


def examples(files: tf.data.Dataset, options: ImageOptions, depth: int, num_classes: int,
             **facts) -> builder.Examples:
  """Examples {'encoded' or 'path', 'label'} for the builder, decoded after the order is chosen."""
  def decode_one(example):
    encoded = example['encoded'] if 'encoded' in example else tf.io.read_file(example['path'])
    image = resize(decode(encoded, depth), options.size, options.resize_mode)
    return {'image': tf.ensure_shape(image / 255.0, [*options.size, depth]),
            'label': tf.cast(example['label'], tf.int32)}

  to_features = functools.partial(_features, options=options, num_classes=num_classes)
  return builder.Examples(files, to_features, (*options.output_size(), depth), num_classes,
                          random=options.distort and bool(options.augment), decode=decode_one,
                          **facts)
