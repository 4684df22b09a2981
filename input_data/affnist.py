"""affNIST: 40x40 affine-transformed MNIST digits, for the paper's robustness test.

The model trains on expanded MNIST (digits padded to 40x40 and shifted by up to 6 pixels) and
is tested on affNIST. Files read from `data_dir`:
  train       train_6shifted_mnist.tfrecords  built by `python -m input_data.mnist_shift
              --data_dir=RAW_MNIST_DIR --output_dir=DIR --split=train --shift=6 --pad=6`
  test        test_affnist.tfrecords          converted from the official test.mat (below)
  validate    validation_affnist.tfrecords    (split='test', validate=True) from validation.mat
All three use the MNIST tf.Example schema: `image_raw` (uint8 bytes, row-major HxWxD), `label`,
`height`, `width`, `depth` (int64).

Converter: `python -m input_data.affnist --mat_dir=DIR --output_dir=DIR` reads the official
MATLAB v5 files (`test.mat`, or `test_batches/1.mat ... 32.mat`, and the same for `validation`).
Each holds a struct `affNISTdata` whose field `image` is uint8 [1600, N]: one image per column,
its 1600 pixels in row-major order, so image n is `image[:, n].reshape(40, 40)` in numpy (in
MATLAB: `reshape(image(:, n), 40, 40)'`). `label_int` [1, N] holds the digit.

This module also holds the pipeline helpers the cifar10 and norb readers share.
"""

import contextlib
import functools
import os
import struct
import sys
from typing import Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from configs.errors import UserError
from input_data import DataError, DatasetSpec, register
from input_data.records import bytes_feature, int64_feature, require_files

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 10_000
PARSE_CHUNK = 256  # records parsed together
IMAGE_SIZE = 40
NUM_CLASSES = 10
TRAIN_FILE = 'train_6shifted_mnist.tfrecords'
TRAIN_COMMAND = ('python -m input_data.mnist_shift --data_dir=RAW_MNIST_DIR --output_dir={dir} '
                 '--split=train --shift=6 --pad=6')
CONVERT_COMMAND = 'python -m input_data.affnist --mat_dir=AFFNIST_MAT_DIR --output_dir={dir}'
_EXAMPLE_FEATURES = {
    'image_raw': tf.io.FixedLenFeature([], tf.string),
    'label': tf.io.FixedLenFeature([], tf.int64),
    'height': tf.io.FixedLenFeature([], tf.int64),
    'width': tf.io.FixedLenFeature([], tf.int64),
    'depth': tf.io.FixedLenFeature([], tf.int64),
}

# ---------------------------------------------------------------- helpers shared by the readers


def check_split(name: str, split: str):
  if split not in ('train', 'test'):
    raise DataError(f'{name}: unknown split {split!r}; expected train or test')


def check_num_targets(name: str, num_targets: int):
  if num_targets != 1:
    raise DataError(f'{name} has one digit/object per image: num_targets must be 1, got '
                    f'{num_targets} (two targets exist only for MultiMNIST: --dataset=mnist)')


def count_records(path: str) -> Optional[int]:
  """Number of records in a local TFRecord file, from its length headers alone (fast).

  Raises DataError naming the file, before any reading, when the last record is cut short
  (e.g. by an interrupted copy). Returns None for remote paths.
  """
  if '://' in path:
    return None
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
  return count


def parse_image_examples(records, *, filename: str, shape: Tuple[int, int, int],
                         num_classes: int):
  """Parses a batch of MNIST-schema tf.Examples into (uint8 pixels [K, H*W*D], int32 labels [K]).

  Every record's stored height/width/depth and byte count must match `shape`, and its label
  0..num_classes-1; a mismatch is an error naming `filename`, never a silent reshape.
  """
  features = tf.io.parse_example(records, _EXAMPLE_FEATURES)
  size, label = int(np.prod(shape)), tf.cast(features['label'], tf.int32)
  stored = tf.stack([features['height'], features['width'], features['depth']], axis=1)
  checks = [
      tf.debugging.assert_equal(stored, tf.constant([shape], tf.int64), message=(
          f'{filename}: a record\'s height/width/depth differ from {shape}')),
      tf.debugging.assert_equal(tf.strings.length(features['image_raw']), size, message=(
          f'{filename}: a record\'s image_raw does not hold {size} bytes')),
      tf.debugging.assert_equal(
          tf.reduce_all((label >= 0) & (label < num_classes)), True,
          message=f'{filename}: a record\'s label is outside 0..{num_classes - 1}'),
  ]
  with tf.control_dependencies(checks):
    pixels = tf.io.decode_raw(features['image_raw'], tf.uint8)
    return tf.reshape(pixels, [-1, size]), tf.identity(label)


def checked_tfrecords(path: str) -> tf.data.Dataset:
  """Chunks of up to PARSE_CHUNK records of one TFRecord file; corruption raises naming it.

  TensorFlow's error for a corrupt record names only a byte offset. Here such a record ends
  the file early instead (ignore_errors), so the bytes read fall short of the file's size,
  which a sentinel after the last chunk asserts. Checking per chunk keeps it cheap.
  """
  size = tf.io.gfile.stat(path).length
  chunks = tf.data.TFRecordDataset(path).ignore_errors().batch(PARSE_CHUNK)
  chunks = chunks.map(lambda records: (records, False)).concatenate(
      tf.data.Dataset.from_tensors((tf.zeros([0], tf.string), True)))

  def count_bytes(read, chunk):
    records, is_end = chunk
    check = tf.debugging.Assert(tf.logical_or(tf.logical_not(is_end), tf.equal(read, size)), [
        f'{path} is corrupt or truncated: its records end at byte', read,
        f'of {size}; rebuild or download it again'])
    with tf.control_dependencies([check]):
      lengths = tf.cast(tf.strings.length(records), tf.int64)
      return read + tf.reduce_sum(lengths + 16), chunk  # + 8-byte length, two 4-byte crcs

  chunks = chunks.scan(tf.constant(0, tf.int64), count_bytes)
  return chunks.filter(lambda _, is_end: tf.logical_not(is_end)).map(lambda records, _: records)


def read_files(paths: Sequence[str], parse: Callable,
               chunks: Callable = checked_tfrecords) -> tf.data.Dataset:
  """Examples of each file in order; `parse(records, filename=...)` gets a chunk of records.

  Parsing a chunk at a time is many times faster than one record at a time, and keeping it
  per file lets errors name the file.
  """
  datasets = [chunks(p).map(functools.partial(parse, filename=p), num_parallel_calls=AUTOTUNE)
              .unbatch() for p in paths]
  return functools.reduce(lambda a, b: a.concatenate(b), datasets)


def image_features(images, labels, num_classes: int) -> Dict[str, tf.Tensor]:
  """The batch dict (see input_data/__init__.py) of images [B, H, W, D] and labels [B]."""
  return {'images': images, 'labels': tf.one_hot(labels, num_classes, dtype=tf.float32),
          'recons_image': images, 'recons_label': labels}


def finish_pipeline(ds: tf.data.Dataset, to_features: Callable, *, batch_size: int,
                    shuffle: bool, repeat: bool, seed: Optional[int],
                    random: bool = False) -> tf.data.Dataset:
  """Shuffle (seeded), repeat, batch, map batches to features, prefetch.

  With `random`, `to_features(batch, seed)` gets a stateless seed per batch, drawn from a
  stream seeded by `seed`, so distortions are reproducible under a parallel map.
  Only an endless (repeated) dataset drops its last partial batch, so no example is lost.
  """
  if shuffle:
    ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  ds = ds.batch(batch_size, drop_remainder=repeat)
  if random:
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))
  return ds.map(to_features, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def default(value, fallback):
  return fallback if value is None else value


# ---------------------------------------------------------------- the affNIST reader


def _parse(records, filename):
  pixels, labels = parse_image_examples(records, filename=filename, num_classes=NUM_CLASSES,
                                        shape=(IMAGE_SIZE, IMAGE_SIZE, 1))
  return {'image': tf.reshape(pixels, [-1, IMAGE_SIZE, IMAGE_SIZE, 1]), 'label': labels}


def _to_features(batch):
  images = tf.cast(batch['image'], tf.float32) * np.float32(1 / 255)
  return image_features(images, batch['label'], NUM_CLASSES)


@register('affnist')
def build(*, data_dir, split, batch_size, num_targets=1, validate=False, distort=None, seed=None,
          repeat=None, shuffle=None, **unused):
  """(dataset, spec): expanded MNIST for 'train'; affNIST test (or validation) for 'test'."""
  del unused  # options of other datasets
  check_split('affnist', split)
  check_num_targets('affnist', num_targets)
  if distort:
    raise DataError('affnist has no distortions: its training file is already shifted '
                    '(--shift=6 --pad=6); leave distort unset')
  if split == 'train':
    path, how = os.path.join(data_dir, TRAIN_FILE), TRAIN_COMMAND.format(dir=data_dir)
  else:
    name = 'validation' if validate else 'test'
    path = os.path.join(data_dir, f'{name}_affnist.tfrecords')
    how = CONVERT_COMMAND.format(dir=data_dir)
  require_files([path], how)
  training = split == 'train'
  ds = finish_pipeline(read_files([path], _parse), _to_features, batch_size=batch_size,
                       shuffle=default(shuffle, training), repeat=default(repeat, training),
                       seed=seed)
  num_examples = None if training else count_records(path)
  return ds, DatasetSpec('affnist', IMAGE_SIZE, IMAGE_SIZE, 1, NUM_CLASSES, 1, num_examples)


# ---------------------------------------------------------------- the .mat -> TFRecord converter


def load_mat(path: str) -> Tuple[np.ndarray, np.ndarray]:
  """(images uint8 [N, 40, 40], labels int64 [N]) from one official affNIST .mat file."""
  import scipy.io  # pylint: disable=g-import-not-at-top; only the converter needs scipy
  try:
    data = scipy.io.loadmat(path, variable_names=['affNISTdata'])
  except (ValueError, TypeError, OSError, EOFError, scipy.io.matlab.MatReadError) as e:
    raise DataError(f'{path}: not a readable MATLAB v5 affNIST file ({e})') from e
  if 'affNISTdata' not in data:
    raise DataError(f'{path}: no variable affNISTdata; found: {sorted(data)}')
  struct_ = data['affNISTdata'].reshape(-1)[0]
  fields = struct_.dtype.names or ()
  if 'image' not in fields or 'label_int' not in fields:
    raise DataError(f'{path}: affNISTdata needs fields image and label_int; found {fields}')
  columns, labels = np.asarray(struct_['image']), np.asarray(struct_['label_int']).reshape(-1)
  pixels = IMAGE_SIZE * IMAGE_SIZE
  if columns.ndim != 2 or columns.shape[0] != pixels or columns.shape[1] != labels.size:
    raise DataError(f'{path}: image is {columns.shape} with {labels.size} labels; expected '
                    f'[{pixels}, N] with N labels')
  if columns.dtype != np.uint8 or np.any((labels < 0) | (labels >= NUM_CLASSES)):
    raise DataError(f'{path}: expected uint8 pixels and labels 0..9, got {columns.dtype} '
                    f'pixels and labels {labels.min()}..{labels.max()}')
  # Column n is image n in row-major order (see the module docstring).
  return columns.T.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels.astype(np.int64)


def mat_files(mat_dir: str, name: str) -> Sequence[str]:
  """`name`.mat, else the numbered files in `name`_batches/ (the two official packagings)."""
  single = os.path.join(mat_dir, f'{name}.mat')
  batches = os.path.join(mat_dir, f'{name}_batches')
  if os.path.exists(single):
    return [single]
  if os.path.isdir(batches):
    numbered = [f for f in os.listdir(batches) if f.endswith('.mat') and f[:-4].isdigit()]
    return [os.path.join(batches, f) for f in sorted(numbered, key=lambda f: int(f[:-4]))]
  return []


@contextlib.contextmanager
def write_whole(path: str) -> Iterator[tf.io.TFRecordWriter]:
  """A TFRecord writer whose file appears at `path` only once it is complete."""
  partial = path + '.partial'
  try:
    with tf.io.TFRecordWriter(partial) as writer:
      yield writer
  except BaseException:
    if tf.io.gfile.exists(partial):
      tf.io.gfile.remove(partial)
    raise
  tf.io.gfile.rename(partial, path, overwrite=True)


def example(image: np.ndarray, label: int) -> tf.train.Example:
  """An MNIST-schema tf.Example for one uint8 [H, W] or [H, W, D] image."""
  height, width = image.shape[:2]
  depth = image.shape[2] if image.ndim == 3 else 1
  return tf.train.Example(features=tf.train.Features(feature={
      'image_raw': bytes_feature(np.ascontiguousarray(image).tobytes()),
      'label': int64_feature(label), 'height': int64_feature(height),
      'width': int64_feature(width), 'depth': int64_feature(depth)}))


def write_split(sources: Iterable[str], output_path: str) -> int:
  """Converts .mat files into one TFRecord file (written whole or not at all); returns the count."""
  count = 0
  with write_whole(output_path) as writer:
    for source in sources:
      images, labels = load_mat(source)
      for image, label in zip(images, labels):
        writer.write(example(image, label).SerializeToString())
      count += len(labels)
      logging.info('%s: %d examples', source, len(labels))
  return count


def convert(mat_dir: str, output_dir: str, names: Sequence[str] = ('test', 'validation')):
  """Writes `{name}_affnist.tfrecords` for each name found; 'test' is required."""
  tf.io.gfile.makedirs(output_dir)
  for name in names:
    sources = mat_files(mat_dir, name)
    if not sources and name == 'test':
      require_files([os.path.join(mat_dir, 'test.mat')],
                    'unzip test.mat.zip from https://www.cs.toronto.edu/~tijmen/affNIST/ '
                    '(32x/transformed/) into that folder')
    if not sources:
      logging.info('no %s.mat in %s; skipping %s', name, mat_dir, name)
      continue
    path = os.path.join(output_dir, f'{name}_affnist.tfrecords')
    logging.info('wrote %d examples to %s', write_split(sources, path), path)


def main(argv):
  """CLI: python -m input_data.affnist --mat_dir=DIR --output_dir=DIR."""
  cli = flags.FlagValues()  # private: importing this module defines no global flags
  flags.DEFINE_string('mat_dir', None, 'folder holding test.mat (and validation.mat)',
                      flag_values=cli)
  flags.DEFINE_string('output_dir', None, 'where *_affnist.tfrecords are written',
                      flag_values=cli)
  flags.mark_flags_as_required(['mat_dir', 'output_dir'], flag_values=cli)
  try:
    cli(argv)
  except flags.Error as e:
    raise app.UsageError(str(e)) from e
  try:
    convert(cli.mat_dir, cli.output_dir)
  except UserError as e:
    logging.error('%s', e)
    sys.exit(2)


if __name__ == '__main__':
  # app.run insists that the global flags are parsed; ours live in main's own FlagValues.
  app.run(main, flags_parser=lambda argv: [*flags.FLAGS(argv[:1]), *argv[1:]])
