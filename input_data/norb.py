"""smallNORB reader: stereo pairs of 96x96 toy images, 5 classes, as the 2017 code read them
(files and preprocessing: docs/data_other.md "smallNORB")."""

import functools

import numpy as np
import tensorflow as tf

from input_data import augment, builder
from input_data.datasets import DATASETS, NORB_SIZES, parse_size
from input_data.pipeline import parse_image_examples, read_files

RAW_SIZE, _, DEPTH = DATASETS['norb'].shape
NUM_CLASSES = DATASETS['norb'].num_classes
IMAGE_SIZE = 48  # the pairs' size by default


def _parse(records, filename, image_size):
  parsed = parse_image_examples(records, filename, num_classes=NUM_CLASSES,
                                shape=(RAW_SIZE, RAW_SIZE, DEPTH))
  return {'image': downsample(parsed['image_raw'], image_size), 'label': parsed['label']}


def downsample(pairs, image_size: int):
  """Stored pairs, flat [K, 2 * 96 * 96] camera-major -> uint8 [K, size, size, 2] (HWC): TF1's
  bilinear `resize_images` of the 2017 code, which for a whole factor samples pixel factor * i."""
  step = RAW_SIZE // image_size
  assert step * image_size == RAW_SIZE, image_size
  rows, cols, cameras = np.meshgrid(np.arange(image_size) * step, np.arange(image_size) * step,
                                    np.arange(DEPTH), indexing='ij')
  flat = (cameras * RAW_SIZE + rows) * RAW_SIZE + cols
  sampled = tf.gather(pairs, tf.constant(flat.reshape(-1), tf.int32), axis=1)
  return tf.reshape(sampled, [-1, image_size, image_size, DEPTH])


def read(dataset, options) -> builder.Examples:
  """Standardized smallNORB pairs, 32x32x2 by default (see the module docstring)."""
  image_size, _ = parse_size('norb', options.get('image_size')) or (IMAGE_SIZE, IMAGE_SIZE)
  crop_size = NORB_SIZES[image_size] if 'crop' in options.augment else image_size
  paths = builder.split_paths(dataset, options)
  parse = functools.partial(_parse, image_size=image_size)
  prepare = functools.partial(augment.prepare, size=(crop_size, crop_size),
                              names=options.augment, standardize=True)
  return builder.Examples(read_files(paths, parse), prepare, (crop_size, crop_size, DEPTH),
                          NUM_CLASSES, builder.epoch_size(paths, options))


if __name__ == '__main__':  # the tool: input_data/tools/norb.py
  from input_data.tools import cli, norb as tool  # pylint: disable=g-import-not-at-top
  cli.start(tool.main)
