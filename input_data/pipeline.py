"""What every reader shares: record files (found, counted, read checked, errors naming the
file), the order of examples, batch dicts (docs/data.md)."""

import os
import struct
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from input_data import DataError

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 10_000  # examples; the original's queue held 5,000 and more
_EPOCH_SEED_STRIDE = 1_000_003  # epoch e of seed s shuffles with seed s + e * stride
_FOREVER = 2**62
PARSE_CHUNK = 256  # records parsed together
MAX_OPEN_FILES = 8  # files (shards) read at once, chunk by chunk

def unconverted(fn: Callable) -> Callable:
  """`fn` for tf.data without autograph's conversion (a second or more of every start)."""
  return tf.autograph.experimental.do_not_convert(fn)


def require_files(paths: Iterable[str], how_to_build: str) -> List[str]:
  """Returns `paths` as a list, or raises DataError naming every missing one and the fix."""
  paths = list(paths)
  missing = [p for p in paths if not tf.io.gfile.exists(p)]
  if missing:
    where = os.path.dirname(missing[0]) or '.'
    raise DataError(f'missing data file(s) in {where}: '
                    f'{", ".join(os.path.basename(p) for p in missing)}; '
                    f'build them with: {how_to_build}')
  return paths


def count_records(paths: Sequence[str]) -> Optional[int]:
  """Records in local TFRecord files, from their length headers alone; None for remote paths.
  A file whose last record is cut short is a DataError naming it."""
  if any('://' in p for p in paths):
    return None
  total = 0
  for path in paths:
    size, offset, count = os.path.getsize(path), 0, 0
    with open(path, 'rb') as f:
      while offset < size:
        header = f.read(8)
        if len(header) == 8:
          offset += 16 + struct.unpack('<Q', header)[0]  # length, its crc, data, data crc
        if len(header) < 8 or offset > size:
          raise DataError(f'{path} is truncated: record {count} ends past the end of the file '
                          f'({size} bytes); rebuild or download the file again')
        f.seek(offset)
        count += 1
    total += count
  return total


def assert_file(ok, filename, template: str, values: Sequence = ()):
  """Asserts `ok`, else fails with filename (a tensor too) + tf.strings.format(template, values)."""
  message = tf.cond(ok, lambda: tf.constant(''),
                    lambda: tf.strings.join([filename, tf.strings.format(template, values)]))
  return tf.debugging.Assert(ok, [message])


def checked_tfrecords(path, size) -> tf.data.Dataset:
  """Chunks of up to PARSE_CHUNK records of one TFRecord file of `size` bytes; a corrupt record
  ends the file early, and a sentinel asserts that the bytes read are `size`, naming the file."""
  chunks = tf.data.TFRecordDataset(path).ignore_errors().batch(PARSE_CHUNK)
  chunks = chunks.map(unconverted(lambda records: (records, False))).concatenate(
      tf.data.Dataset.from_tensors((tf.zeros([0], tf.string), True)))

  def count_bytes(read, chunk):
    records, is_end = chunk
    check = assert_file(tf.logical_or(tf.logical_not(is_end), tf.equal(read, size)), path,
                        ' is corrupt or truncated: its records end at byte {} of {}; rebuild '
                        'or download it again', [read, size])
    with tf.control_dependencies([check]):
      lengths = tf.cast(tf.strings.length(records), tf.int64)
      return read + tf.reduce_sum(lengths + 16), chunk  # + 8-byte length, two 4-byte crcs

  chunks = chunks.scan(tf.constant(0, tf.int64), unconverted(count_bytes))
  return (chunks.filter(unconverted(lambda _, is_end: tf.logical_not(is_end)))
          .map(unconverted(lambda records, _: records)))


def read_files(paths: Sequence[str], parse: Callable,
               chunks: Callable = checked_tfrecords) -> tf.data.Dataset:
  """The examples of files `paths`, in a fixed order: `chunks(path, size)` cuts each into chunks
  of records, read MAX_OPEN_FILES files at once, and `parse(records, filename)` makes dicts."""
  paths = list(paths)
  sizes = tf.constant([tf.io.gfile.stat(p).length for p in paths], tf.int64)
  files = tf.data.Dataset.from_tensor_slices((paths, sizes))
  named_chunks = files.interleave(
      unconverted(lambda path, size: chunks(path, size).map(
          unconverted(lambda records: (records, path)))),
      cycle_length=min(len(paths), MAX_OPEN_FILES), num_parallel_calls=AUTOTUNE)
  return named_chunks.map(unconverted(parse), num_parallel_calls=AUTOTUNE).unbatch()


def parse_image_examples(records, filename, *, shape: Tuple[int, int, int], num_classes: int,
                         images: Sequence[str] = ('image_raw',),
                         labels: Sequence[str] = ('label',)) -> Dict[str, tf.Tensor]:
  """A chunk of MNIST-schema tf.Examples -> {image key: uint8 [K, H*W*D], label key: int32 [K]};
  a record whose size or labels do not fit `shape`, num_classes is an error naming `filename`."""
  spec = {k: tf.io.FixedLenFeature([], tf.string, default_value='') for k in images}
  spec.update({k: tf.io.FixedLenFeature([], tf.int64, default_value=-1)
               for k in (*labels, 'height', 'width', 'depth')})
  features = tf.io.parse_example(records, spec)
  size = int(np.prod(shape))
  sizes = tf.stack([tf.cast(tf.strings.length(features[k]), tf.int64) for k in images], axis=1)
  stored = tf.stack([features[k] for k in ('height', 'width', 'depth')], axis=1)
  values = tf.stack([features[k] for k in labels], axis=1)
  good = (tf.reduce_all(tf.equal(stored, shape), axis=1)
          & tf.reduce_all(tf.equal(sizes, size), axis=1)
          & tf.reduce_all((values >= 0) & (values < num_classes), axis=1))
  bad = tf.argmin(tf.cast(good, tf.int32))  # the first bad record, if any
  check = assert_file(
      tf.reduce_all(good), filename,
      ': a record has height, width, depth {}, image bytes {}, labels {}; expected '
      f'{list(shape)}, {size} bytes, labels 0..{num_classes - 1}; rebuild the file',
      [stored[bad], sizes[bad], values[bad]])
  with tf.control_dependencies([check]):
    parsed = {k: tf.reshape(tf.io.decode_raw(features[k], tf.uint8), [-1, size])
              for k in images}
    parsed.update({k: tf.cast(features[k], tf.int32) for k in labels})
    return parsed


def epochs(examples: tf.data.Dataset, *, seed: int, shuffle: bool, repeat: bool, start: int = 0,
           count: Optional[int] = None) -> tf.data.Dataset:
  """The examples in a run's order from example `start` on: one epoch as stored, or epoch after
  epoch, epoch e shuffled by (seed, e) alone; `count` (examples per epoch) needed for a start."""
  def epoch(e):
    if not shuffle:
      return examples
    return examples.shuffle(SHUFFLE_BUFFER, seed=seed + e * _EPOCH_SEED_STRIDE,
                            reshuffle_each_iteration=False)
  if not repeat:
    return epoch(tf.constant(0, tf.int64)).skip(start)
  if start and not count:
    raise ValueError(f'a start ({start}) needs the examples per epoch; the reader gave {count}')
  first, offset = divmod(start, count) if start else (0, 0)
  return tf.data.Dataset.range(first, _FOREVER).flat_map(unconverted(epoch)).skip(offset)


def batches(examples: tf.data.Dataset, to_features: Callable, *, batch_size: int,
            drop_remainder: bool, seed: Optional[int] = None, first_batch: int = 0):
  """Batches mapped to batch dicts, prefetched; with `seed`, `to_features(batch, [seed, n])`
  for batch n of the stream (the first read: `first_batch`)."""
  ds = examples.batch(batch_size, drop_remainder=drop_remainder)
  if seed is not None:
    seeds = tf.data.Dataset.range(first_batch, _FOREVER).map(
        unconverted(lambda n: tf.stack([tf.constant(seed, tf.int64), n])))
    ds = tf.data.Dataset.zip((ds, seeds))
  return ds.map(unconverted(to_features), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
