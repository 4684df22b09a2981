"""Builds shifted MNIST and MultiMNIST TFRecords of raw MNIST IDX files, as the original's
`mnist_shift.py`: generate.py's examples in order, sidecars (docs/data_mnist.md "The builder")."""

import contextlib
import functools
import json
import multiprocessing
import os

from absl import flags
from absl import logging
import numpy as np

from configs.errors import UserError
from configs.progress import Progress
from input_data import DataError, generate, idx
from input_data.datasets import CHOICES, check_choice
from input_data.mnist import (NUM_CLASSES, NUM_PAIRS, RECORD_KEYS, metadata_path, multi_prefix,
                              shard_names, shifted_name)
from input_data.tools import cli, records

_BATCH = 1024  # examples fetched from tf.data at a time


def shard_records(num_images: int, num_pairs: int, seed: int, first: int, stop: int):
  """The records, in stream order, of the slots [first, stop): record k (pair p of image i) has
  slot p * num_images + a seeded permutation of i, so a shard draws images from all over."""
  image_at = np.argsort(np.random.default_rng(seed).permutation(num_images))
  slots = np.arange(first, stop)
  return np.sort(image_at[slots % num_images] * num_pairs + slots // num_images)


def record(example) -> bytes:
  """A sampler example (numpy) serialized: mnist.RECORD_KEYS' features, height, width, depth."""
  height, width = example['image' if 'image' in example else 'merged'].shape[:2]
  ints, raws = dict(height=height, width=width, depth=1), {}
  for key, value in example.items():
    (raws if value.ndim else ints)[RECORD_KEYS[key]] = value
  return records.serialize_example(ints, raws)


def _write(path, images, labels, report=None, **sampler):
  """Writes the sampler's in-order stream to `path`, whole; report(records so far) per batch."""
  dataset, _, _ = generate.examples(images, labels, endless=False, **sampler)
  done = 0
  with records.write_whole(path) as writer:
    for batch in dataset.batch(_BATCH).as_numpy_iterator():
      size = len(next(iter(batch.values())))
      for j in range(size):
        writer.write(record({k: v[j] for k, v in batch.items()}))
      done += size
      if report:
        report(done)


def build_shifted(images, labels, path, *, shift, pad):
  """Writes every shift of every image padded by `pad` to one TFRecord file; returns count."""
  total = len(images) * (2 * shift + 1) ** 2
  report = functools.partial(cli.report, progress=Progress(total), what=os.path.basename(path))
  _write(path, images, labels, report, num_targets=1, shift=shift, pad=pad, num_pairs=None,
         seed=0)
  report(total, force=True)
  _write_metadata(path, total, images.shape[1:], shift=shift, pad=pad)
  return total


_DIGITS = {}


def _keep_digits(images, labels):
  """A worker's digits, sent once per process."""
  _DIGITS.update(images=images, labels=labels)


def _write_shard(task):
  """Writes one MultiMNIST shard: the records at `positions` of the stream; returns their count."""
  name, positions, sampler = task
  _write(name, **_DIGITS, positions=positions, **sampler)
  return len(positions)


def build_multi(images, labels, prefix, *, shift, pad, num_pairs, max_shard, seed,
                base_shift='per_pair', num_workers=1):
  """Writes MultiMNIST shards '<prefix>-i-of-n' of at most max_shard records, one at a time in
  each of num_workers processes (the same bytes whatever their number); returns names."""
  check_choice('mnist_shift', 'base_shift', base_shift)
  fewest = min(np.sum(labels != c) for c in np.unique(labels))
  if num_pairs > fewest:
    raise DataError(f'--num_pairs={num_pairs} is more than the {fewest} images some class '
                    f'can be paired with; lower --num_pairs')
  total = len(images) * num_pairs
  names = shard_names(prefix, -(-total // max_shard))
  sampler = dict(num_targets=2, shift=shift, pad=pad, num_pairs=num_pairs, seed=seed,
                 base_shift=base_shift)
  tasks = ((name, shard_records(len(images), num_pairs, seed, s * max_shard,
                                min((s + 1) * max_shard, total)), sampler)
           for s, name in enumerate(names))
  report = functools.partial(cli.report, progress=Progress(total), what=os.path.basename(prefix))
  _keep_digits(images, labels)
  spawn = multiprocessing.get_context('spawn')  # forking a process with TensorFlow is unsafe
  with (spawn.Pool(num_workers, _keep_digits, (images, labels)) if num_workers > 1
        else contextlib.nullcontext()) as pool:
    counts = []
    for count in (pool.imap if pool else map)(_write_shard, tasks):
      counts.append(count)
      report(sum(counts))
  report(total, force=True)
  _write_metadata(prefix, total, images.shape[1:], shift=shift, pad=pad,
                  num_pairs=num_pairs, seed=seed, base_shift=base_shift,
                  num_shards=len(names), shard_records=counts)
  return names


def _write_metadata(output, num_records, shape, **settings):
  """The sidecar: record count, image size and the build's settings."""
  height, width = (int(d) + 2 * settings['pad'] for d in shape)
  with open(metadata_path(output), 'w') as f:
    json.dump(dict(num_records=num_records, height=height, width=width, depth=1, **settings), f,
              indent=1)


def build(raw_dir, output_dir, split, *, shift=2, pad=0, multi_targets=False, num_pairs=NUM_PAIRS,
          max_shard=100000, seed=0, base_shift='per_pair', num_workers=1):
  """Reads a raw MNIST split and writes its shifted MNIST file or MultiMNIST shards."""
  if shift < 0 or pad < 0 or num_pairs < 1 or max_shard < 1 or num_workers < 1:
    raise UserError(f'need shift >= 0, pad >= 0, num_pairs >= 1, max_shard >= 1, num_workers '
                    f'>= 1; got {shift}, {pad}, {num_pairs}, {max_shard}, {num_workers}')
  check_choice('mnist_shift', 'base_shift', base_shift)
  if base_shift != 'per_pair' and not multi_targets:
    raise UserError(f'--base_shift={base_shift} pairs MultiMNIST digits: add --multi_targets '
                    'or drop --base_shift')
  images, labels = idx.load_split(raw_dir, split, num_classes=NUM_CLASSES)
  os.makedirs(output_dir, exist_ok=True)
  logging.info('%s: %d images %s from %s', split, len(images), images.shape[1:], raw_dir)
  if multi_targets:
    return build_multi(images, labels, os.path.join(output_dir, multi_prefix(split, shift)),
                       shift=shift, pad=pad, num_pairs=num_pairs, max_shard=max_shard,
                       seed=seed, base_shift=base_shift, num_workers=num_workers)
  path = os.path.join(output_dir, shifted_name(split, shift))
  build_shifted(images, labels, path, shift=shift, pad=pad)
  return [path]


def _define_flags(values: flags.FlagValues):
  string, integer = (functools.partial(f, flag_values=values)
                     for f in (flags.DEFINE_string, flags.DEFINE_integer))
  string('data_dir', '/tmp/tensorflow/mnist/input_data', 'Raw MNIST IDX files.')
  string('output_dir', '', 'Where to write; default: --data_dir.')
  flags.DEFINE_enum('split', 'train', list(idx.SPLITS), 'Which split to build.',
                    flag_values=values)
  integer('shift', 2, 'Maximum shift on each axis.')
  integer('pad', 0, 'Zero padding on each side before shifting.')
  flags.DEFINE_boolean('multi_targets', False, 'Build MultiMNIST pairs.', flag_values=values)
  integer('num_pairs', NUM_PAIRS, 'MultiMNIST: partners per image.')
  integer('max_shard', 100000, 'MultiMNIST: records per shard.')
  integer('seed', 0, 'MultiMNIST: seed of partners, shifts and shard spread.')
  flags.DEFINE_enum('base_shift', 'per_pair', list(CHOICES['base_shift']),
                    'MultiMNIST: shift each base digit afresh per pair, or once for all its '
                    'pairs (the original).', flag_values=values)
  integer('num_workers', 1, 'MultiMNIST: processes writing shards (each uses several cores).')


def _build_from_flags(f: flags.FlagValues):
  paths = build(f.data_dir, f.output_dir or f.data_dir, f.split, shift=f.shift, pad=f.pad,
                multi_targets=f.multi_targets, num_pairs=f.num_pairs, max_shard=f.max_shard,
                seed=f.seed, base_shift=f.base_shift, num_workers=f.num_workers)
  logging.info('wrote %d file(s): %s%s', len(paths), paths[0], ' ...' if len(paths) > 1 else '')


def main(argv):
  """CLI: python -m input_data.mnist_shift --data_dir=RAW --split=... (see the module doc)."""
  cli.run(argv, _define_flags, _build_from_flags)
