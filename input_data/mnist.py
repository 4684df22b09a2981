"""MNIST, shifted MNIST and MultiMNIST: the builder's TFRecords, or raw IDX digits sampled on the
fly (generate=True), -> batch dicts; files, names and options: docs/data_mnist.md."""

import functools
import json
import os

import tensorflow as tf

from input_data import DataError
from input_data import augment, builder
from input_data.datasets import DATASETS
from input_data import generate as generate_lib
from input_data import idx, pipeline

NUM_CLASSES = DATASETS['mnist'].num_classes
MULTI_PAD, NUM_PAIRS = 4, 1000  # the original's MultiMNIST: 36x36 pairs, 1,000 per digit
RECORD_KEYS = {'image': 'image_raw', 'label': 'label', 'image_1': 'image_raw_1',
               'image_2': 'image_raw_2', 'merged': 'merged_raw', 'label_1': 'label_1',
               'label_2': 'label_2'}  # example key -> the original's record feature
_IMAGES = {1: ('image',), 2: ('image_1', 'image_2', 'merged')}
_LABELS = {1: ('label',), 2: ('label_1', 'label_2')}


def default_raw_dir() -> str:
  """The packaged 5,000 real MNIST digits (4,000 train, 1,000 test) as raw IDX files."""
  return os.path.join(os.path.dirname(__file__), 'data', 'mnist_5k')


def read(dataset, options) -> builder.Examples:
  """MNIST or MultiMNIST examples; options: docs/data_mnist.md "The reader"."""
  del dataset
  num_targets, generate = options.get('num_targets', 1), options.get('generate', False)
  split, seed = options.split, options.seed
  shift = options.get('shift', 6 if num_targets == 2 else 2 * (split == 'train'))  # the original's
  builder_split = f'valid_{split}' if options.get('validate') else split
  if generate:
    endless = options.shuffle and options.repeat
    examples, (height, width), num_examples = generate_lib.examples(
        *idx.load_split(options.data_dir, builder_split, num_classes=NUM_CLASSES),
        num_targets=num_targets, shift=shift,
        pad=options.get('pad', MULTI_PAD if num_targets == 2 else 0),
        num_pairs=options.get('num_pairs', NUM_PAIRS), seed=seed, endless=endless,
        start=options.start, base_shift=options.get('base_shift', 'per_pair'))
  else:
    files, metadata = _find_files(options.data_dir, builder_split, num_targets, shift)
    height, width = _peek_shape(files[0])
    parse = functools.partial(parse_records, num_targets=num_targets, shape=(height, width))
    examples, endless = pipeline.read_files(files, parse), False
    num_examples = metadata.get('num_records')
    if num_examples is None:
      num_examples = builder.epoch_size(files, options)
  size, prepare = augment.for_digits(height, width, options.augment)
  to_features = functools.partial(pair_features, prepare=prepare) if num_targets == 2 else None
  return builder.Examples(examples, prepare, (*size, 1), NUM_CLASSES, num_examples,
                          endless=endless, num_targets=num_targets, to_features=to_features)


def shifted_name(split: str, shift: int) -> str:
  """'train_2shifted_mnist.tfrecords'; split valid_train -> 'train_2shifted_mnist_valid...'."""
  base, suffix = (split[len('valid_'):], '_valid') if split.startswith('valid_') else (split, '')
  return f'{base}_{shift}shifted_mnist{suffix}.tfrecords'


def multi_prefix(split: str, shift: int) -> str:
  """Prefix of MultiMNIST shards, e.g. 'multitest_6shifted_mnist.tfrecords'."""
  return 'multi' + shifted_name(split, shift)


def shard_names(prefix: str, num_shards: int):
  """'<prefix>-00000-of-00010', ... (read as '<prefix>@10')."""
  return [f'{prefix}-{i:05d}-of-{num_shards:05d}' for i in range(num_shards)]


def metadata_path(output: str) -> str:
  """The JSON sidecar of an output file or shard prefix."""
  return output + '.json'


def _find_files(data_dir, split, num_targets, shift):
  """(existing TFRecord paths, the builder's sidecar or {}) of one split."""
  multi = f' --pad={MULTI_PAD} --multi_targets' if num_targets == 2 else ''
  command = (f'python -m input_data.mnist_shift --data_dir=RAW_MNIST_DIR --output_dir=DIR '
             f'--split={split} --shift={shift}{multi}')
  if num_targets == 1:
    path = os.path.join(data_dir, shifted_name(split, shift))
    return pipeline.require_files([path], command), _metadata(path)
  if '@' in os.path.basename(data_dir):
    prefix, num_shards = data_dir.rsplit('@', 1)
    if not num_shards.isdigit():
      raise DataError(f'bad sharded path {data_dir!r}: expected <dir>/<prefix>@<num shards>')
  else:
    prefix = os.path.join(data_dir, multi_prefix(split, shift))
    num_shards = len(tf.io.gfile.glob(prefix + '-?????-of-?????'))
    if not num_shards:
      raise DataError(f'missing data file(s) in {data_dir}: no shards '
                      f'{os.path.basename(prefix)}-?????-of-?????; build them with: {command}')
  files = shard_names(prefix, int(num_shards))
  return pipeline.require_files(files, command), _metadata(prefix)


def _metadata(output):
  """The sidecar of a file or shard prefix, or {}."""
  path = metadata_path(output)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _peek_shape(path):
  """(height, width) of the first record of `path`."""
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


def parse_records(records, filename, num_targets, shape):
  """A chunk of records -> example dicts of uint8 [K, H, W, 1] images, checked against `shape`."""
  height, width = shape
  parsed = pipeline.parse_image_examples(
      records, filename, shape=(height, width, 1), num_classes=NUM_CLASSES,
      images=[RECORD_KEYS[k] for k in _IMAGES[num_targets]], labels=_LABELS[num_targets])
  examples = {k: tf.reshape(parsed[RECORD_KEYS[k]], [-1, height, width, 1])
              for k in _IMAGES[num_targets]}
  return dict(examples, **{k: parsed[k] for k in _LABELS[num_targets]})


def pair_features(batch, seed=None, *, prepare, num_classes=NUM_CLASSES):
  """A batch of MultiMNIST examples -> the batch dict (input_data/__init__.py) of both targets."""
  del seed  # pairs are not distorted
  return {'images': prepare(batch['merged']),
          'labels': (tf.one_hot(batch['label_1'], num_classes)
                     + tf.one_hot(batch['label_2'], num_classes)),
          'recons_image': prepare(batch['image_1']), 'recons_label': batch['label_1'],
          'spare_image': prepare(batch['image_2']), 'spare_label': batch['label_2']}
