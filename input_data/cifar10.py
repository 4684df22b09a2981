"""CIFAR-10 reader: the official binary batches (records of a label and a channel-major image),
preprocessed as the 2017 TF CIFAR-10 tutorial (docs/data_other.md "CIFAR-10")."""

import functools
import os

import tensorflow as tf

from input_data import DataError, augment, builder
from input_data.datasets import DATASETS
from input_data.pipeline import PARSE_CHUNK, assert_file, read_files

IMAGE_SIZE, _, DEPTH = DATASETS['cifar10'].shape
NUM_CLASSES = DATASETS['cifar10'].num_classes
CROP_SIZE = 24
RECORD_BYTES = 1 + IMAGE_SIZE * IMAGE_SIZE * DEPTH
FOLDER = 'cifar-10-batches-bin'


def count_examples(paths) -> int:
  """Total records; a file whose size is not a whole number of records is an error naming it."""
  total = 0
  for path in paths:
    size = tf.io.gfile.stat(path).length
    if size == 0 or size % RECORD_BYTES:
      raise DataError(f'{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte '
                      'CIFAR-10 records (truncated or not a CIFAR-10 binary batch); download '
                      'it again')
    total += size // RECORD_BYTES
  return total


def decode_records(records, filename: str = 'a CIFAR-10 batch'):
  """{'image': uint8 [K, 32, 32, 3] (HWC), 'label': int32 [K]} from 3,073-byte records [K]."""
  data = tf.io.decode_raw(records, tf.uint8)
  labels = tf.cast(data[:, 0], tf.int32)
  check = assert_file(tf.reduce_all(labels < NUM_CLASSES), filename,
                      ': a record\'s label is {}, not 0..9', [tf.reduce_max(labels)])
  with tf.control_dependencies([check]):
    chw = tf.reshape(data[:, 1:], [-1, DEPTH, IMAGE_SIZE, IMAGE_SIZE])
  return {'image': tf.transpose(chw, [0, 2, 3, 1]), 'label': labels}


def read(dataset, options) -> builder.Examples:
  """24x24x3 standardized CIFAR-10 images (see the module docstring)."""
  inside = any(tf.io.gfile.exists(os.path.join(options.data_dir, n))
               for n in ('test_batch.bin', 'data_batch_1.bin'))
  folder = options.data_dir if inside else os.path.join(options.data_dir, FOLDER)
  paths = builder.split_paths(dataset, options, folder)

  def chunks(path, size):
    del size  # count_examples checks it
    return tf.data.FixedLengthRecordDataset(path, RECORD_BYTES).batch(PARSE_CHUNK)

  prepare = functools.partial(augment.prepare, size=(CROP_SIZE, CROP_SIZE),
                              names=options.augment, standardize=True)
  num_examples = count_examples(paths)
  return builder.Examples(read_files(paths, decode_records, chunks), prepare,
                          (CROP_SIZE, CROP_SIZE, DEPTH), NUM_CLASSES, num_examples)
