"""affNIST reader: expanded MNIST (40x40, shifted up to 6) to train, affNIST to test.

Files and the converter (input_data/tools/affnist.py): docs/data_other.md "affNIST". All use the
MNIST tf.Example schema (image_raw, label, height, width, depth); pixels are scaled by 1/255.
"""

import os

import numpy as np
import tensorflow as tf

from input_data import builder
from input_data.datasets import DATASETS
from input_data.pipeline import (count_records, image_features, parse_image_examples, read_files,
                                 require_files)

IMAGE_SIZE, _, _ = DATASETS['affnist'].shape
NUM_CLASSES = DATASETS['affnist'].num_classes

def _parse(records, filename):
  parsed = parse_image_examples(records, filename, num_classes=NUM_CLASSES,
                                shape=(IMAGE_SIZE, IMAGE_SIZE, 1))
  return {'image': tf.reshape(parsed['image_raw'], [-1, IMAGE_SIZE, IMAGE_SIZE, 1]),
          'label': parsed['label']}


def _to_features(batch):
  images = tf.cast(batch['image'], tf.float32) * np.float32(1 / 255)
  return image_features(images, batch['label'], NUM_CLASSES)


def read(dataset, options) -> builder.Examples:
  """Expanded MNIST for 'train'; affNIST test (or validation) for 'test'."""
  path = os.path.join(options.data_dir, builder.split_files(dataset, options))
  require_files([path], dataset.prepare.format(dir=options.data_dir))
  return builder.Examples(read_files([path], _parse), _to_features, dataset.shape, NUM_CLASSES,
                          None if options.training and not options.start
                          else count_records([path]))


if __name__ == '__main__':  # the tool: input_data/tools/affnist.py
  from input_data.tools import cli, affnist as tool  # pylint: disable=g-import-not-at-top
  cli.start(tool.main)
