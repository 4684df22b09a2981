"""Images/s of each dataset's input pipeline alone, at training batch size 128: one table.

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
import numpy as np
import tensorflow as tf

from configs.errors import parse_flags
import input_data
from input_data import cifar10
from input_data import datasets
from input_data import idx
from input_data import mnist
from input_data import norb
from input_data.tools import mnist_shift
from input_data.tools import norb as norb_tool
from input_data.tools import records

Rows = Dict[str, Callable[[], tf.data.Dataset]]


def _row(name, data_dir: str, batch_size: int, split: str, **options):
  return lambda: input_data.build_dataset(name, data_dir=data_dir, split=split,
                                          batch_size=batch_size, repeat=True, seed=0,
                                          **options)[0]


def mnist_rows(workdir: str, batch_size: int) -> Rows:
  """Shifted MNIST read from files built of the packaged digits, and generated."""
  raw = mnist.default_raw_dir()
  images, labels = idx.load_split(raw, 'train')
  mnist_shift.build_shifted(images[:1000], labels[:1000],  # 25,000 records
                            os.path.join(workdir, mnist.shifted_name('train', 2)),
                            shift=2, pad=0)
  test_images, test_labels = idx.load_split(raw, 'test')
  mnist_shift.build_shifted(test_images, test_labels,
                            os.path.join(workdir, mnist.shifted_name('test', 0)),
                            shift=0, pad=0)

  def row(split, data_dir=workdir, **options):
    return _row('mnist', data_dir, batch_size, split, **options)

  return {
      'mnist_train (files)': row('train'),
      'mnist_train (files, distorted)': row('train', distort=True),
      'mnist_test (files)': row('test'),
      'mnist_train (generated)': row('train', raw, generate=True),
  }


def multimnist_rows(workdir: str, batch_size: int) -> Rows:
  """MultiMNIST read from shards built of the packaged digits, and generated."""
  raw = mnist.default_raw_dir()
  images, labels = idx.load_split(raw, 'train')
  shards = mnist_shift.build_multi(  # 20,000 records in 4 shards
      images, labels, os.path.join(workdir, mnist.multi_prefix('train', 6)), shift=6,
      pad=4, num_pairs=5, max_shard=5000, seed=0)
  multi_dir = f'{os.path.join(workdir, mnist.multi_prefix("train", 6))}@{len(shards)}'

  def row(split, data_dir=multi_dir, **options):
    return _row('mnist', data_dir, batch_size, split, num_targets=2, **options)

  return {
      'multimnist_train (files)': row('train'),
      'multimnist_test (files)': row('test'),
      'multimnist_train (generated)': row('train', raw, generate=True),
      'multimnist_test (generated)': row('test', raw, generate=True),
  }


def write_synthetic(data_dir: str, num_examples: int, seed: int = 0) -> str:
  """Writes affNIST, CIFAR-10 and smallNORB files in their official layouts, `num_examples`
  random images each (decoding and preprocessing cost the same as with real images)."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 5, num_examples)
  for name in ('test_affnist.tfrecords', datasets.DATASETS['affnist'].files['train']):
    with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as writer:
      for image, label in zip(rng.integers(0, 256, (num_examples, 40, 40), np.uint8), labels):
        writer.write(records.image_example(image, label))
  folder = os.path.join(data_dir, cifar10.FOLDER)
  os.makedirs(folder, exist_ok=True)
  for name in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
    batch = rng.integers(0, 256, (num_examples, cifar10.RECORD_BYTES), np.uint8)
    batch[:, 0] = labels
    batch.tofile(os.path.join(folder, name))
  for split in ('train', 'test'):
    with tf.io.TFRecordWriter(os.path.join(data_dir, f'{split}duo.tfrecords')) as writer:
      for label in labels:
        image = rng.integers(0, 256, norb.DEPTH * norb.RAW_SIZE ** 2, np.uint8).tobytes()
        writer.write(norb_tool.example(image, label, [0, 0, 0, 0]).SerializeToString())
  return data_dir


def other_rows(workdir: str, batch_size: int, num_examples: int = 2000) -> Rows:
  """affNIST, CIFAR-10 and smallNORB over synthetic files written to `workdir`."""
  write_synthetic(workdir, num_examples)

  def row(name, split, **options):
    return _row(name, workdir, batch_size, split, **options)

  return {
      'affnist_train (expanded MNIST)': row('affnist', 'train'),
      'affnist_test': row('affnist', 'test'),
      'cifar10_train (distorted)': row('cifar10', 'train'),
      'cifar10_test': row('cifar10', 'test'),
      'norb_train (distorted)': row('norb', 'train'),
      'norb_test': row('norb', 'test'),
  }


ROW_SOURCES = [mnist_rows, multimnist_rows, other_rows]  # built in order, as far as needed


def images_per_second(dataset: tf.data.Dataset, batches: int, warmup: int = 5) -> float:
  """Images/s of iterating `dataset` for `batches` batches after `warmup` batches."""
  iterator = iter(dataset)
  for _ in range(warmup):
    next(iterator)
  start, images = time.perf_counter(), 0
  for _ in range(batches):
    images += int(next(iterator)['images'].shape[0])
  return images / (time.perf_counter() - start)


def table(rates: Dict[str, float]) -> str:
  """A Markdown table of images/s per row, as docs/data_*.md show them."""
  lines = ['| pipeline | images/s |', '| --- | --- |']
  lines += [f'| {name} | {rate:,.0f} |' for name, rate in rates.items()]
  return '\n'.join(lines)


def _define_flags():
  flags.DEFINE_integer('batch_size', 128, 'Examples per batch.')
  flags.DEFINE_integer('batches', 100, 'Timed batches per row.')
  flags.DEFINE_string('only', '', 'Time only rows whose name contains this.')


def main(argv):
  del argv
  cli = flags.FLAGS
  rates = {}
  with tempfile.TemporaryDirectory(prefix='input_pipeline_') as workdir:
    rows = {}
    for source in ROW_SOURCES:
      rows.update(source(workdir, cli.batch_size))
    for name, make in rows.items():
      if cli.only in name:
        rates[name] = images_per_second(make(), cli.batches)
        logging.info('%-34s %8.0f images/s', name, rates[name])
  print(table(rates))  # the result, on stdout


if __name__ == '__main__':
  _define_flags()  # here, so that importing this module defines no flags
  app.run(main, flags_parser=parse_flags)
