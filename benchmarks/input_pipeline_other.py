"""Rows of benchmarks.input_pipeline for the affNIST, CIFAR-10 and smallNORB readers.

  python -m benchmarks.input_pipeline --only=norb

`other_rows(workdir, batch_size)` writes synthetic files in the official layouts to `workdir`
(random pixels: decoding and preprocessing cost the same as with real images) and returns
{row name: () -> endless dataset of batch dicts}.
"""

import os
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

from input_data import affnist, cifar10, norb, pipeline


def write_synthetic(data_dir: str, num_examples: int, seed: int = 0) -> str:
  """Writes every file the rows read, `num_examples` random images each; returns data_dir."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 5, num_examples)
  for name in ('test_affnist.tfrecords', affnist.TRAIN_FILE):
    with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as writer:
      for image, label in zip(rng.integers(0, 256, (num_examples, 40, 40), np.uint8), labels):
        writer.write(pipeline.image_example(image, label))
  folder = os.path.join(data_dir, cifar10.FOLDER)
  os.makedirs(folder, exist_ok=True)
  for name in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
    records = rng.integers(0, 256, (num_examples, cifar10.RECORD_BYTES), np.uint8)
    records[:, 0] = labels
    records.tofile(os.path.join(folder, name))
  for split in ('train', 'test'):
    with tf.io.TFRecordWriter(os.path.join(data_dir, f'{split}duo.tfrecords')) as writer:
      for label in labels:
        image = rng.integers(0, 256, 2 * 96 * 96, np.uint8).tobytes()
        writer.write(norb.example(image, label, [0, 0, 0, 0]).SerializeToString())
  return data_dir


def other_rows(workdir: str, batch_size: int,
               num_examples: int = 2000) -> Dict[str, Callable[[], tf.data.Dataset]]:
  """{row name: factory of an endless dataset} over synthetic files written to `workdir`."""
  write_synthetic(workdir, num_examples)

  def row(build, split, **options):
    return lambda: build(data_dir=workdir, split=split, batch_size=batch_size, repeat=True,
                         seed=0, **options)[0]

  return {
      'affnist_train (expanded MNIST)': row(affnist.build, 'train'),
      'affnist_test': row(affnist.build, 'test'),
      'cifar10_train (distorted)': row(cifar10.build, 'train'),
      'cifar10_test': row(cifar10.build, 'test'),
      'norb_train (distorted)': row(norb.build, 'train'),
      'norb_test': row(norb.build, 'test'),
  }
