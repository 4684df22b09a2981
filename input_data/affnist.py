"""affNIST: 40x40 affine-transformed MNIST digits, for the paper's robustness test.

The model trains on expanded MNIST (digits padded to 40x40 and shifted by up to 6 pixels) and
is tested on affNIST. Files read from `data_dir`:
  train       train_6shifted_mnist.tfrecords  built by `python -m input_data.mnist_shift
              --data_dir=RAW_MNIST_DIR --output_dir=DIR --split=train --shift=6 --pad=6`
  test        test_affnist.tfrecords          converted from the official test.mat (below)
  validate    validation_affnist.tfrecords    (split='test', validate=True) from validation.mat
All three use the MNIST tf.Example schema: `image_raw` (uint8 bytes, row-major HxWxD), `label`,
`height`, `width`, `depth` (int64).

Converter (input_data/tools/affnist.py): `python -m input_data.affnist --mat_dir=DIR --output_dir=DIR` reads the official
MATLAB v5 files (`test.mat`, or `test_batches/1.mat ... 32.mat`, and the same for `validation`).
Each holds a struct `affNISTdata` whose field `image` is uint8 [1600, N]: one image per column,
its 1600 pixels in row-major order, so image n is `image[:, n].reshape(40, 40)` in numpy (in
MATLAB: `reshape(image(:, n), 40, 40)'`). `label_int` [1, N] holds the digit.
"""

import os
import numpy as np
import tensorflow as tf

from input_data import builder
from input_data.pipeline import (count_records, image_features, parse_image_examples, read_files,
                                 require_files)

IMAGE_SIZE = 40
NUM_CLASSES = 10

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
                          None if options.training else count_records([path]))


if __name__ == '__main__':  # python -m input_data.affnist: the converter in input_data/tools/affnist.py
  from input_data.tools import cli, affnist as tool  # pylint: disable=g-import-not-at-top
  cli.start(tool.main)
