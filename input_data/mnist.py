"""MNIST, shifted MNIST and MultiMNIST: TFRecords (or raw IDX digits) -> batch dicts.

Files, as `python -m input_data.mnist_shift` writes them (the original's names):
  num_targets=1  <data_dir>/train_2shifted_mnist.tfrecords, test_0shifted_mnist.tfrecords
                 validate=True: train_2shifted_mnist_valid.tfrecords, test_0shifted_..._valid
  num_targets=2  data_dir='<dir>/multitest_6shifted_mnist.tfrecords@10' names the 10 shards
                 '<prefix>-00000-of-00010' ...; a plain <dir> finds multi{split}_6shifted_...
generate=True makes the same examples on the fly from raw IDX files in data_dir (generate.py).
Pixels are uint8 * float32(1/255), as the original reader.
"""

import json
import os
import struct

import numpy as np
import tensorflow as tf

from configs.errors import UserError
from input_data import DataError
from input_data import DatasetSpec
from input_data import generate as generate_lib
from input_data import mnist_shift
from input_data import records
from input_data import register

NUM_CLASSES = 10
SHUFFLE_BUFFER = 10000  # serialized records; about the original's queue capacity
_CROP = 4  # distortion crops 28 -> 24, as the original
_MAX_ANGLE = np.deg2rad(15.0)
_RAW_KEYS = {1: ('image_raw',), 2: ('image_raw_1', 'image_raw_2', 'merged_raw')}
_LABEL_KEYS = {1: ('label',), 2: ('label_1', 'label_2')}
# Example dicts shared with generate.py: uint8 [H, W, 1] images and int32 labels.
_EXAMPLE_KEYS = {'image_raw': 'image', 'label': 'label', 'image_raw_1': 'image_1',
                 'image_raw_2': 'image_2', 'merged_raw': 'merged'}


def default_raw_dir() -> str:
  """The packaged 5,000 real MNIST digits (4,000 train, 1,000 test) as raw IDX files."""
  return os.path.join(os.path.dirname(__file__), 'data', 'mnist_5k')


def default_shift(split: str, num_targets: int) -> int:
  """The original's shifts: MultiMNIST 6; MNIST train 2, test 0."""
  return 6 if num_targets == 2 else (2 if split == 'train' else 0)


@register('mnist')
def build(*, data_dir, split, batch_size, num_targets=1, validate=False, distort=None,
          seed=None, repeat=None, shuffle=None, generate=False, shift=None, pad=None,
          num_pairs=None):
  """Returns (tf.data.Dataset of batch dicts, DatasetSpec) for MNIST or MultiMNIST.

  shift picks the files (default: default_shift); generate=True reads raw IDX digits in
  data_dir and makes examples on the fly, with pad (default 0, MultiMNIST 4) and
  num_pairs (default 1000). distort (single target only): random 24x24 crop and rotation
  up to 15 degrees in training, central crop in evaluation.
  """
  _check_args(split, batch_size, num_targets, distort, generate, pad, num_pairs)
  training = split == 'train'
  repeat = training if repeat is None else repeat
  shuffle = training if shuffle is None else shuffle
  seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed
  shift = default_shift(split, num_targets) if shift is None else shift
  builder_split = f'valid_{split}' if validate else split
  if generate:
    examples, (height, width), num_examples = generate_lib.examples(
        data_dir, builder_split, num_targets=num_targets, shift=shift,
        pad=(4 if num_targets == 2 else 0) if pad is None else pad,
        num_pairs=1000 if num_pairs is None else num_pairs, seed=seed, shuffle=shuffle,
        repeat=repeat)
  else:
    files, metadata = _find_files(data_dir, builder_split, num_targets, shift)
    height, width = _peek_shape(files[0])
    examples = _read_examples(files, num_targets, (height, width), shuffle, repeat, seed)
    num_examples = metadata.get('num_records')
    if num_examples is None and not training:
      num_examples = sum(count_records(f) for f in files)
  if distort:
    height, width = height - _CROP, width - _CROP
  dataset = _batches(examples, num_targets, bool(distort), training, seed, batch_size)
  return dataset, DatasetSpec(name='mnist', height=height, width=width, depth=1,
                              num_classes=NUM_CLASSES, num_targets=num_targets,
                              num_examples=num_examples)


def _check_args(split, batch_size, num_targets, distort, generate_, pad, num_pairs):
  if split not in ('train', 'test'):
    raise UserError(f"mnist: split must be 'train' or 'test', got {split!r}")
  if num_targets not in (1, 2):
    raise UserError(f'mnist: num_targets must be 1 (MNIST) or 2 (MultiMNIST), got {num_targets}')
  if batch_size < 1:
    raise UserError(f'mnist: batch_size must be positive, got {batch_size}')
  if distort and num_targets == 2:
    raise UserError('mnist: distortion applies to single-digit MNIST only (as the original)')
  if not generate_ and (pad is not None or num_pairs is not None):
    raise UserError('mnist: pad and num_pairs apply with generate=True only; the files '
                    'carry the settings they were built with')


# --- files -----------------------------------------------------------------------------------

def _find_files(data_dir, split, num_targets, shift):
  """Returns (existing TFRecord paths, the builder's metadata or {}) of one split."""
  command = mnist_shift.builder_command(split, shift, multi_targets=num_targets == 2)
  if num_targets == 1:
    path = os.path.join(data_dir, mnist_shift.shifted_name(split, shift))
    return records.require_files([path], command), _metadata(path)
  if '@' in os.path.basename(data_dir):
    prefix, num_shards = data_dir.rsplit('@', 1)
    if not num_shards.isdigit():
      raise DataError(f'bad sharded path {data_dir!r}: expected <dir>/<prefix>@<num shards>')
  else:
    prefix = os.path.join(data_dir, mnist_shift.multi_prefix(split, shift))
    num_shards = len(tf.io.gfile.glob(prefix + '-?????-of-?????'))
    if not num_shards:
      raise DataError(f'missing data file(s) in {data_dir}: no shards '
                      f'{os.path.basename(prefix)}-?????-of-?????; build them with: {command}')
  files = mnist_shift.shard_names(prefix, int(num_shards))
  return records.require_files(files, command), _metadata(prefix)


def _metadata(output):
  """The builder's JSON sidecar of a file or shard prefix, or {} for files without one."""
  path = mnist_shift.metadata_path(output)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def count_records(path: str) -> int:
  """Counts the records of a TFRecord file from its length headers (reads no payloads)."""
  count, offset = 0, 0
  with tf.io.gfile.GFile(path, 'rb') as f:
    size = f.size()
    while offset + 8 <= size:
      f.seek(offset)
      offset += 16 + struct.unpack('<Q', f.read(8))[0]  # length, crc, data, crc
      count += 1
  return count


def _peek_shape(path):
  """(height, width) of the first record of `path`; every record is checked against it."""
  try:
    first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
  except tf.errors.OpError as e:
    raise DataError(f'cannot read the first record of {path}: {e.message}') from e
  if first is None:
    raise DataError(f'{path} holds no records; rebuild it with input_data.mnist_shift')
  feature = tf.train.Example.FromString(first.numpy()).features.feature
  try:
    height, width, depth = (feature[k].int64_list.value[0] for k in ('height', 'width', 'depth'))
  except IndexError as e:
    raise DataError(f'{path}: records lack height/width/depth; rebuild it with '
                    'input_data.mnist_shift') from e
  if depth != 1:
    raise DataError(f'{path}: depth {depth}; MNIST images have depth 1')
  return int(height), int(width)


def checked_records(filename, size):
  """The (filename, record) pairs of one TFRecord file; corruption raises naming the file.

  A corrupt or truncated record ends the file's records early (ignore_errors moves on), so
  the bytes read fall short of the file's size, which the end sentinel asserts.
  """
  tagged = tf.data.TFRecordDataset(filename).ignore_errors().map(lambda r: (r, False))
  tagged = tagged.concatenate(tf.data.Dataset.from_tensors((tf.constant(b''), True)))

  def step(read, element):
    record, is_end = element
    check = tf.debugging.Assert(tf.logical_or(tf.logical_not(is_end), tf.equal(read, size)), [
        'corrupt or truncated TFRecord file', filename, 'records end after byte', read,
        'of', size, '; rebuild it'])
    with tf.control_dependencies([check]):
      read += 16 + tf.cast(tf.strings.length(record), tf.int64)  # + length and crcs
    return read, (record, is_end)

  scanned = tagged.scan(tf.constant(0, tf.int64), step)
  return scanned.filter(lambda r, is_end: tf.logical_not(is_end)).map(lambda r, _: (filename, r))


def _parse(filename, record, num_targets, shape):
  """One record -> example dict; a record that does not fit `shape` raises naming the file."""
  height, width = shape
  raw_keys, label_keys = _RAW_KEYS[num_targets], _LABEL_KEYS[num_targets]
  spec = {k: tf.io.FixedLenFeature([], tf.string, default_value='') for k in raw_keys}
  spec.update({k: tf.io.FixedLenFeature([], tf.int64, default_value=-1)
               for k in label_keys + ('height', 'width', 'depth')})
  f = tf.io.parse_single_example(record, spec)
  sizes = [tf.strings.length(f[k]) for k in raw_keys]
  labels = [f[k] for k in label_keys]
  ok = tf.reduce_all(tf.stack(
      [tf.equal(f['height'], height), tf.equal(f['width'], width), tf.equal(f['depth'], 1)]
      + [tf.equal(s, height * width) for s in sizes]
      + [tf.logical_and(l >= 0, l < NUM_CLASSES) for l in labels]))
  check = tf.debugging.Assert(ok, [
      'bad MNIST record in', filename, ': height, width, depth, image bytes, labels =',
      f['height'], f['width'], f['depth'], *sizes, *labels,
      f'; expected {height}, {width}, 1, {height * width} bytes per image, labels 0-9'])
  with tf.control_dependencies([check]):
    example = {_EXAMPLE_KEYS[k]: tf.reshape(tf.io.decode_raw(f[k], tf.uint8), [height, width, 1])
               for k in raw_keys}
  example.update({_EXAMPLE_KEYS.get(k, k): tf.cast(f[k], tf.int32) for k in label_keys})
  return example


def _read_examples(files, num_targets, shape, shuffle, repeat, seed):
  """Example dicts of TFRecord files: shards interleaved, records shuffled, then parsed."""
  sizes = [tf.io.gfile.stat(f).length for f in files]
  dataset = tf.data.Dataset.from_tensor_slices((files, tf.constant(sizes, tf.int64)))
  if shuffle:
    dataset = dataset.shuffle(len(files), seed=seed)
  dataset = dataset.interleave(checked_records, cycle_length=min(len(files), 8),
                               num_parallel_calls=tf.data.AUTOTUNE)
  if shuffle:
    dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed)
  if repeat:
    dataset = dataset.repeat()
  return dataset.map(lambda f, r: _parse(f, r, num_targets, shape),
                     num_parallel_calls=tf.data.AUTOTUNE)


# --- example dicts -> batch dicts ------------------------------------------------------------

def _scale(image):
  return tf.cast(image, tf.float32) * np.float32(1 / 255)


def _to_batch_features(example, num_targets):
  """An example dict -> the contract's dict (input_data/__init__.py) for one example."""
  if num_targets == 1:
    image = _scale(example['image'])
    return {'images': image, 'labels': tf.one_hot(example['label'], NUM_CLASSES),
            'recons_image': image, 'recons_label': example['label']}
  return {'images': _scale(example['merged']),
          'labels': (tf.one_hot(example['label_1'], NUM_CLASSES)
                     + tf.one_hot(example['label_2'], NUM_CLASSES)),
          'recons_image': _scale(example['image_1']), 'recons_label': example['label_1'],
          'spare_image': _scale(example['image_2']), 'spare_label': example['label_2']}


def rotate(image, angle):
  """Rotates image [H, W, C] by `angle` radians about its centre; zeros fill the corners."""
  height, width = image.shape[0], image.shape[1]
  cy, cx = (height - 1) / 2, (width - 1) / 2
  cos, sin = tf.cos(angle), tf.sin(angle)
  # Maps each output pixel (x, y) to the input pixel it samples.
  transform = tf.stack([cos, -sin, cx - cx * cos + cy * sin,
                        sin, cos, cy - cx * sin - cy * cos, 0.0, 0.0])
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=image[None], transforms=transform[None], output_shape=[height, width],
      fill_value=0.0, interpolation='NEAREST', fill_mode='CONSTANT')[0]


def distort_image(image, training, seed):
  """Training: random crop 4 pixels smaller and rotation within +-15 degrees (seed [2]);
  evaluation: the central crop."""
  size = [image.shape[0] - _CROP, image.shape[1] - _CROP, image.shape[2]]
  if not training:
    return image[_CROP // 2:_CROP // 2 + size[0], _CROP // 2:_CROP // 2 + size[1]]
  crop_seed, angle_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  image = tf.image.stateless_random_crop(image, size, seed=crop_seed)
  angle = tf.random.stateless_uniform([], angle_seed, -_MAX_ANGLE, _MAX_ANGLE)
  return rotate(image, angle)


def _batches(examples, num_targets, distort, training, seed, batch_size):
  """Example dicts -> batches of contract dicts; evaluation keeps the last partial batch."""
  if distort:
    def features(n, example):
      batch = _to_batch_features(example, num_targets)
      image = distort_image(batch['images'], training,
                            tf.stack([tf.constant(seed, tf.int64), n]))
      return dict(batch, images=image, recons_image=image)
    dataset = examples.enumerate().map(features, num_parallel_calls=tf.data.AUTOTUNE)
  else:
    dataset = examples.map(lambda ex: _to_batch_features(ex, num_targets),
                           num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
