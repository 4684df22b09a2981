"""Builds shifted MNIST and MultiMNIST TFRecords from raw MNIST IDX files (docs/data_mnist.md).

The original's `mnist_shift.py`, made to stream, run in parallel worker processes and give
the same bytes for a given --seed whatever --num_workers. Each output gets a `<name>.json`
sidecar (record counts, sizes, settings) written last.
"""

import collections
import functools
import json
import os

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from configs.errors import UserError
from configs.progress import Progress
from input_data import DataError
from input_data import idx
from input_data.mnist import (BASE_SHIFTS, check_base_shift, metadata_path, multi_prefix,
                              shard_names, shifted_name)
from input_data.tools import cli, records

_RECORDS_PER_CHUNK = 20000  # shifted MNIST work unit, in records
_IMAGES_PER_BLOCK = 256  # MultiMNIST: images whose shards are computed in one vector op


def shift_2d(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """Moves `image` [H, W] down by dy and right by dx rows/columns, filling with zeros."""
  height, width = image.shape
  out = np.zeros_like(image)
  out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = (
      image[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)])
  return out


def shifted_views(images: np.ndarray, shift: int) -> np.ndarray:
  """[N, 2s+1, 2s+1, H, W] views: [i, shift - dy, shift - dx] is shift_2d(images[i], dy, dx)
  (windows of the zero-padded images: fancy indexing then shifts many at once)."""
  margin = ((0, 0), (shift, shift), (shift, shift))
  return np.lib.stride_tricks.sliding_window_view(np.pad(images, margin), images.shape[1:],
                                                  axis=(1, 2))


def all_shifts(shift: int):
  """[(dy, dx)] in the original's order: rows -shift..shift, then columns."""
  span = range(-shift, shift + 1)
  return [(dy, dx) for dy in span for dx in span]


def others_by_class(labels: np.ndarray):
  """{class: indices of images of every other class} (MultiMNIST partner candidates)."""
  return {c: np.flatnonzero(labels != c) for c in np.unique(labels)}


def pair_draws(seed: int, index: int, label: int, others, num_pairs: int, shift: int,
               base_shift: str = 'per_pair'):
  """Partners [P] (distinct, other classes) and shifts [P, (dy1, dx1, dy2, dx2)] of one image.

  The generator is keyed by (seed, image index) alone, so no worker layout changes it.
  base_shift='once' gives every pair the first pair's (dy1, dx1), as the original reused one
  shifted base for all its pairs; the other draws stay as 'per_pair' draws them.
  """
  rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
  candidates = others[label]
  partners = candidates[rng.choice(len(candidates), size=num_pairs, replace=False)]
  shifts = rng.integers(-shift, shift + 1, size=(num_pairs, 4))
  if base_shift == 'once':
    shifts[:, :2] = shifts[0, :2]
  return partners, shifts


def merge(image_1: np.ndarray, image_2: np.ndarray) -> np.ndarray:
  """MultiMNIST's overlay: min(a + b, 255) as uint8."""
  return np.minimum(image_1.astype(np.int32) + image_2, 255).astype(np.uint8)


class ShardPermutation:
  """A keyed pseudo-random permutation of [0, n): record k -> slot (Feistel + cycle walking).

  Slot // max_shard is the shard of record k: every shard but the last holds exactly
  max_shard records drawn at random from all images, and no table of n entries is kept.
  """

  def __init__(self, n: int, seed: int, rounds: int = 4):
    bits = max(2, (n - 1).bit_length())
    self._half = (bits + 1) // 2
    self._mask = np.uint64((1 << self._half) - 1)
    self._n = n
    self._keys = np.random.SeedSequence(seed).generate_state(rounds, np.uint64)

  def _mix(self, x, key):
    # splitmix64's finalizer: uint64 arithmetic wraps, as intended.
    z = x ^ key
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))) & self._mask

  def _encrypt(self, x):
    half = np.uint64(self._half)
    left, right = x >> half, x & self._mask
    for key in self._keys:
      left, right = right, left ^ self._mix(right, key)
    return (left << half) | right

  def __call__(self, k: np.ndarray) -> np.ndarray:
    y = self._encrypt(np.asarray(k, np.uint64))
    while True:  # walk the cycle until back inside [0, n): a bijection of [0, n)
      out = y >= self._n
      if not out.any():
        return y.astype(np.int64)
      y[out] = self._encrypt(y[out])


def pair_example(image_1, image_2, merged, label_1: int, label_2: int) -> bytes:
  """MultiMNIST record: label_{1,2}, image_raw_{1,2}, merged_raw, height, width, depth."""
  return records.serialize_example(
      dict(height=merged.shape[0], width=merged.shape[1], depth=1, label_1=label_1,
           label_2=label_2),
      dict(image_raw_1=image_1, image_raw_2=image_2, merged_raw=merged))


_STATE = {}


def _init_worker(images, labels, shift, counter):
  """Per-process state: the padded digits' shifted views, labels, the progress counter."""
  _STATE.update(views=shifted_views(images, shift), labels=labels, counter=counter,
                others=others_by_class(labels))


def _count(n):
  with _STATE['counter'].get_lock():
    _STATE['counter'].value += n


def _shift_chunk(task):
  """Serialized records of every shift of images[start:stop], in the original's order."""
  start, stop, shift = task
  views, labels = _STATE['views'], _STATE['labels']
  out = [records.image_example(views[i, shift - dy, shift - dx], labels[i])
         for i in range(start, stop) for dy, dx in all_shifts(shift)]
  _count(len(out))
  return out


def _write_pairs(i, pairs, shards, writers, num_pairs, shift, seed, base_shift):
  """Writes the pairs `pairs` of image i (of its num_pairs) to the writers of their shards."""
  views, labels = _STATE['views'], _STATE['labels']
  partners, shifts = pair_draws(seed, i, labels[i], _STATE['others'], num_pairs, shift,
                                base_shift)
  partners, offsets = partners[pairs], shift - shifts[pairs]
  firsts = views[i, offsets[:, 0], offsets[:, 1]]
  seconds = views[partners, offsets[:, 2], offsets[:, 3]]
  for j, first, second, merged, partner in zip(pairs, firsts, seconds, merge(firsts, seconds),
                                                partners):
    writers[shards[j]].write(pair_example(first, second, merged, labels[i], labels[partner]))
  _count(len(pairs))


def _write_shard_group(task):
  """Writes shards [first, stop) of a MultiMNIST build; returns their record counts."""
  first, stop, prefix, num_shards, num_pairs, shift, max_shard, seed, base_shift = task
  num_images = len(_STATE['labels'])
  names = shard_names(prefix, num_shards)
  writers = {s: tf.io.TFRecordWriter(names[s]) for s in range(first, stop)}
  counts = collections.Counter()
  permutation = ShardPermutation(num_images * num_pairs, seed)
  for start in range(0, num_images, _IMAGES_PER_BLOCK):
    stop_image = min(start + _IMAGES_PER_BLOCK, num_images)
    block = permutation(np.arange(start * num_pairs, stop_image * num_pairs)) // max_shard
    for i, shards in zip(range(start, stop_image), block.reshape(-1, num_pairs)):
      mine = np.flatnonzero((shards >= first) & (shards < stop))
      if mine.size:
        _write_pairs(i, mine, shards, writers, num_pairs, shift, seed, base_shift)
        counts.update(shards[mine].tolist())
  for writer in writers.values():
    writer.close()
  return [counts[s] for s in range(first, stop)]


def build_shifted(images, labels, path, *, shift, pad, num_workers=1):
  """Writes every shift of every image padded by `pad` to one TFRecord file; returns count."""
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
  per_image = (2 * shift + 1) ** 2
  step = max(1, _RECORDS_PER_CHUNK // per_image)
  tasks = [(s, min(s + step, len(images)), shift) for s in range(0, len(images), step)]
  total = len(images) * per_image
  report = functools.partial(cli.report, progress=Progress(total), what=os.path.basename(path))
  with records.write_whole(path) as writer:
    for chunk in cli.run_tasks(_init_worker, _STATE.clear, _shift_chunk, tasks,
                               (padded, labels, shift), num_workers, report):
      for record in chunk:
        writer.write(record)
  report(total, force=True)
  _write_metadata(path, total, padded.shape[1:], shift=shift, pad=pad)
  return total


def build_multi(images, labels, prefix, *, shift, pad, num_pairs, max_shard, seed,
                base_shift='per_pair', num_workers=1):
  """Writes MultiMNIST shards '<prefix>-i-of-n' of at most max_shard records; returns names.

  base_shift: 'per_pair' shifts the base digit afresh for each of its pairs; 'once' shifts it
  once and reuses it for all num_pairs (the original's builder). Partners: a shift per pair.
  """
  check_base_shift(base_shift)
  others = others_by_class(labels)
  fewest = min(len(v) for v in others.values())
  if num_pairs > fewest:
    raise DataError(f'--num_pairs={num_pairs} is more than the {fewest} images some class '
                    f'can be paired with; lower --num_pairs')
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
  total = len(images) * num_pairs
  num_shards = -(-total // max_shard)
  # One group of shards per worker (each task draws every image's pairs once): same bytes.
  per_task = -(-num_shards // max(num_workers, 1))
  tasks = [(s, min(s + per_task, num_shards), prefix, num_shards, num_pairs, shift, max_shard,
            seed, base_shift) for s in range(0, num_shards, per_task)]
  report = functools.partial(cli.report, progress=Progress(total),
                             what=os.path.basename(prefix))
  groups = cli.run_tasks(_init_worker, _STATE.clear, _write_shard_group, tasks,
                         (padded, labels, shift), num_workers, report)
  counts = [c for group in groups for c in group]
  report(total, force=True)
  _write_metadata(prefix, total, padded.shape[1:], shift=shift, pad=pad, num_pairs=num_pairs,
                  seed=seed, base_shift=base_shift, num_shards=num_shards,
                  shard_records=counts)
  return shard_names(prefix, num_shards)


def _write_metadata(output, num_records, shape, **settings):
  with open(metadata_path(output), 'w') as f:
    json.dump(dict(num_records=num_records, height=int(shape[0]), width=int(shape[1]), depth=1,
                   **settings), f, indent=1)


def build(raw_dir, output_dir, split, *, shift=2, pad=0, multi_targets=False, num_pairs=1000,
          max_shard=100000, seed=0, base_shift='per_pair', num_workers=1):
  """Reads a raw MNIST split and writes its shifted MNIST file or MultiMNIST shards."""
  if shift < 0 or pad < 0 or num_pairs < 1 or max_shard < 1:
    raise UserError(f'need shift >= 0, pad >= 0, num_pairs >= 1, max_shard >= 1; got '
                    f'{shift}, {pad}, {num_pairs}, {max_shard}')
  check_base_shift(base_shift)
  if base_shift != 'per_pair' and not multi_targets:
    raise UserError(f'--base_shift={base_shift} pairs MultiMNIST digits: add --multi_targets '
                    'or drop --base_shift')
  images, labels = idx.load_split(raw_dir, split)
  if labels.size and labels.max() > 9:
    raise DataError(f'labels in {raw_dir} go up to {labels.max()}; MNIST has classes 0-9')
  os.makedirs(output_dir, exist_ok=True)
  logging.info('%s: %d images %s from %s', split, len(images), images.shape[1:], raw_dir)
  if multi_targets:
    return build_multi(images, labels, os.path.join(output_dir, multi_prefix(split, shift)),
                       shift=shift, pad=pad, num_pairs=num_pairs, max_shard=max_shard,
                       seed=seed, base_shift=base_shift, num_workers=num_workers)
  path = os.path.join(output_dir, shifted_name(split, shift))
  build_shifted(images, labels, path, shift=shift, pad=pad, num_workers=num_workers)
  return [path]


def _define_flags(values: flags.FlagValues):
  flags.DEFINE_string('data_dir', '/tmp/tensorflow/mnist/input_data', 'Raw MNIST IDX files.',
                      flag_values=values)
  flags.DEFINE_string('output_dir', '', 'Where to write; default: --data_dir.',
                      flag_values=values)
  flags.DEFINE_enum('split', 'train', list(idx.SPLITS), 'Which split to build.',
                    flag_values=values)
  flags.DEFINE_integer('shift', 2, 'Maximum shift on each axis.', flag_values=values)
  flags.DEFINE_integer('pad', 0, 'Zero padding on each side before shifting.',
                       flag_values=values)
  flags.DEFINE_boolean('multi_targets', False, 'Build MultiMNIST pairs.', flag_values=values)
  flags.DEFINE_integer('num_pairs', 1000, 'MultiMNIST: partners per image.', flag_values=values)
  flags.DEFINE_integer('max_shard', 100000, 'MultiMNIST: records per shard.',
                       flag_values=values)
  flags.DEFINE_integer('seed', 0, 'MultiMNIST: seed of partners, shifts and shard spread.',
                       flag_values=values)
  flags.DEFINE_enum('base_shift', 'per_pair', list(BASE_SHIFTS),
                    'MultiMNIST: shift each base digit afresh per pair, or once for all its '
                    'pairs (the original).', flag_values=values)
  flags.DEFINE_integer('num_workers', os.cpu_count() or 1, 'Worker processes.',
                       flag_values=values)


def _build_from_flags(f: flags.FlagValues):
  paths = build(f.data_dir, f.output_dir or f.data_dir, f.split, shift=f.shift, pad=f.pad,
                multi_targets=f.multi_targets, num_pairs=f.num_pairs, max_shard=f.max_shard,
                seed=f.seed, base_shift=f.base_shift, num_workers=f.num_workers)
  logging.info('wrote %d file(s): %s%s', len(paths), paths[0], ' ...' if len(paths) > 1 else '')


def main(argv):
  """CLI: python -m input_data.mnist_shift --data_dir=RAW --split=... (see the module doc)."""
  cli.run(argv, _define_flags, _build_from_flags)
