"""Images/s of each input pipeline alone, at training batch size 128.

  python -m benchmarks.input_pipeline                    # every row
  python -m benchmarks.input_pipeline --only=multimnist --batches=200

A pipeline should run at least 10x the training step rate (a capsule net trains at about
33-130 images/s on a 2-core CPU, so >= 1,300 images/s) to never be the bottleneck.
Rows come from ROW_SOURCES: functions (workdir, batch_size) -> {row name: () -> endless
dataset of batch dicts}. To add a dataset, append its source. Evaluation rows repeat too, so
every row is timed in its steady state.
"""

import os
import tempfile
import time
from typing import Callable, Dict

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from benchmarks import input_pipeline_other
from input_data import idx
from input_data import mnist
from input_data import mnist_shift

Rows = Dict[str, Callable[[], tf.data.Dataset]]


def mnist_rows(workdir: str, batch_size: int) -> Rows:
  """Shifted MNIST and MultiMNIST read from files built of the packaged digits, and generated."""
  images, labels = idx.load_split(mnist.default_raw_dir(), 'train')
  mnist_shift.build_shifted(images[:1000], labels[:1000],  # 25,000 records
                            os.path.join(workdir, mnist_shift.shifted_name('train', 2)),
                            shift=2, pad=0)
  test_images, test_labels = idx.load_split(mnist.default_raw_dir(), 'test')
  mnist_shift.build_shifted(test_images, test_labels,
                            os.path.join(workdir, mnist_shift.shifted_name('test', 0)),
                            shift=0, pad=0)
  shards = mnist_shift.build_multi(  # 20,000 records in 4 shards
      images, labels, os.path.join(workdir, mnist_shift.multi_prefix('train', 6)), shift=6,
      pad=4, num_pairs=5, max_shard=5000, seed=0)
  multi_dir = f'{os.path.join(workdir, mnist_shift.multi_prefix("train", 6))}@{len(shards)}'

  def row(split, data_dir=workdir, **options):
    return lambda: mnist.build(data_dir=data_dir, split=split, batch_size=batch_size,
                               repeat=True, seed=0, **options)[0]

  raw = mnist.default_raw_dir()
  return {
      'mnist_train (files)': row('train'),
      'mnist_train (files, distorted)': row('train', distort=True),
      'mnist_test (files)': row('test'),
      'multimnist_train (files)': row('train', multi_dir, num_targets=2),
      'multimnist_test (files)': row('test', multi_dir, num_targets=2),
      'mnist_train (generated)': row('train', raw, generate=True),
      'multimnist_train (generated)': row('train', raw, num_targets=2, generate=True),
      'multimnist_test (generated)': row('test', raw, num_targets=2, generate=True),
  }


ROW_SOURCES = [mnist_rows, input_pipeline_other.other_rows]


def images_per_second(dataset: tf.data.Dataset, batches: int, warmup: int = 5) -> float:
  """Images/s of iterating `dataset` for `batches` batches after `warmup` batches."""
  iterator = iter(dataset)
  for _ in range(warmup):
    next(iterator)
  start, images = time.perf_counter(), 0
  for _ in range(batches):
    images += int(next(iterator)['images'].shape[0])
  return images / (time.perf_counter() - start)


def _define_flags():
  flags.DEFINE_integer('batch_size', 128, 'Examples per batch.')
  flags.DEFINE_integer('batches', 100, 'Timed batches per row.')
  flags.DEFINE_string('only', '', 'Time only rows whose name contains this.')


def main(argv):
  del argv
  cli = flags.FLAGS
  with tempfile.TemporaryDirectory(prefix='input_pipeline_') as workdir:
    rows = {}
    for source in ROW_SOURCES:
      rows.update(source(workdir, cli.batch_size))
    for name, make in rows.items():
      if cli.only in name:
        logging.info('%-34s %8.0f images/s', name, images_per_second(make(), cli.batches))


if __name__ == '__main__':
  _define_flags()  # here, so that importing this module defines no flags
  app.run(main)
