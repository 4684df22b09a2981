"""smallNORB: stereo pairs of 96x96 toy images, 5 classes, preprocessed as the 2017 code did.

Files read from `data_dir`: `trainduo.tfrecords` and `testduo.tfrecords`, tf.Examples with
`image_raw` (the uint8 stereo pair as stored by smallNORB: [2, 96, 96], camera-major), `label`,
`height`, `width`, `depth` (96, 96, 2) and `meta` (instance, elevation, azimuth, lighting).

The converter `python -m input_data.norb --raw_dir=DIR --output_dir=DIR` builds them from the
official files `smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat` and
`smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat` (plain or .gz). Those are in the
smallNORB binary matrix format: little-endian int32 magic (0x1E3D4C55 uint8, 0x1E3D4C54 int32,
...), int32 ndim, max(ndim, 3) int32 dims, then the data in C order.

Reading (as the 2017 norb_input_record): pixels float32 0..255, resized to `image_size` (48, or
32) with TF1's bilinear resize (no half-pixel offset, so 96 -> 48 keeps every other pixel);
with `distort` (default True, both splits) cropped to 32 (22 for image_size=32): training takes
random brightness (max delta 63) and contrast [0.2, 1.8] then a random crop, test a central
crop; finally per-image standardization. smallNORB has no validation split.
"""

import contextlib
import functools
import gzip
import os
import struct
import zlib
from typing import BinaryIO, Dict, Iterator, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from input_data import DataError, builder, cli
from input_data.pipeline import (bytes_feature, count_records, image_features, int64_feature,
                                 parse_image_examples, random_brightness, random_contrast,
                                 random_crop, read_files, require_files, write_whole)

RAW_SIZE = 96
DEPTH = 2
NUM_CLASSES = 5
CROP_SIZES = {48: 32, 32: 22}  # image_size -> distorted size, as in the 2017 code
RAW_FILES = {'train': 'smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat',
             'test': 'smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat'}
MAGIC_TYPES = {0x1E3D4C51: '<f4', 0x1E3D4C53: '<f8', 0x1E3D4C54: '<i4', 0x1E3D4C55: 'u1',
               0x1E3D4C56: '<i2'}
RAW_URL = 'https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/'

# ---------------------------------------------------------------- reader


def _parse(records, filename, image_size):
  parsed = parse_image_examples(records, filename, num_classes=NUM_CLASSES,
                                shape=(RAW_SIZE, RAW_SIZE, DEPTH))
  return {'image': downsample(parsed['image_raw'], image_size), 'label': parsed['label']}


def downsample(pairs, image_size: int):
  """Stored pairs, flat [K, 2 * 96 * 96] camera-major -> uint8 [K, size, size, 2] (HWC).

  This is the 2017 code's TF1 `resize_images` (bilinear, no half-pixel centers): for a whole
  factor it samples source pixel factor * i exactly, so one gather does it, on uint8 and
  before anything is buffered.
  """
  step = RAW_SIZE // image_size
  assert step * image_size == RAW_SIZE, image_size
  rows, cols, cameras = np.meshgrid(np.arange(image_size) * step, np.arange(image_size) * step,
                                    np.arange(DEPTH), indexing='ij')
  flat = (cameras * RAW_SIZE + rows) * RAW_SIZE + cols
  sampled = tf.gather(pairs, tf.constant(flat.reshape(-1), tf.int32), axis=1)
  return tf.reshape(sampled, [-1, image_size, image_size, DEPTH])


def distort_images(images, crop_size: int, seed):
  """Random brightness and contrast, then a random crop (the 2017 order); `seed`: int [2]."""
  seeds = tf.random.experimental.stateless_split(seed, 3)
  images = random_brightness(images, 63, seeds[0])
  images = random_contrast(images, 0.2, 1.8, seeds[1])
  return random_crop(images, crop_size, seeds[2])


def _make_features(image_size: int, crop_size: int):
  def to_features(batch, seed=None):
    images = tf.cast(batch['image'], tf.float32)
    if seed is not None:
      images = distort_images(images, crop_size, seed)
    elif crop_size != image_size:
      images = tf.image.resize_with_crop_or_pad(images, crop_size, crop_size)
    return image_features(tf.image.per_image_standardization(images), batch['label'],
                          NUM_CLASSES)
  return to_features


def read(dataset, options) -> builder.Examples:
  """Standardized smallNORB pairs, 32x32x2 by default (see the module docstring)."""
  image_size = options.get('image_size', 48)
  if image_size not in CROP_SIZES:
    raise DataError(f'norb image_size must be one of {sorted(CROP_SIZES)}, got {image_size}')
  distort = builder.distorting(dataset, options)
  crop_size = CROP_SIZES[image_size] if distort else image_size
  path = os.path.join(options.data_dir, builder.split_files(dataset, options))
  require_files([path], dataset.prepare.format(dir=options.data_dir))
  parse = functools.partial(_parse, image_size=image_size)
  return builder.Examples(read_files([path], parse), _make_features(image_size, crop_size),
                          (crop_size, crop_size, DEPTH), NUM_CLASSES,
                          None if options.training else count_records([path]), random=distort)


# ---------------------------------------------------------------- converter


def raw_paths(raw_dir: str, split: str) -> Dict[str, str]:
  """{'dat'|'cat'|'info': path} of a split's official files, each plain or gzipped."""
  paths = {}
  for kind in ('dat', 'cat', 'info'):
    plain = os.path.join(raw_dir, RAW_FILES[split].format(kind))
    paths[kind] = plain if os.path.exists(plain) or not os.path.exists(plain + '.gz') else (
        plain + '.gz')
  require_files(paths.values(), f'download them (.mat.gz is fine) from {RAW_URL} into {raw_dir}')
  return paths


def read_some(f: BinaryIO, size: int, path: str) -> bytes:
  """Up to `size` bytes of `f`; a corrupt gzip stream or I/O error: DataError naming `path`."""
  try:
    return f.read(size)
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f'{path}: unreadable ({e}); download it again') from e


def read_exact(f: BinaryIO, size: int, path: str) -> bytes:
  data = read_some(f, size, path)
  if len(data) != size:
    raise DataError(f'{path} is truncated: wanted {size} more bytes, got {len(data)}; '
                    'download it again')
  return data


def read_header(f: BinaryIO, path: str) -> Tuple[np.dtype, Tuple[int, ...]]:
  """(element dtype, shape) from a smallNORB binary matrix header."""
  magic, ndim = struct.unpack('<iI', read_exact(f, 8, path))
  if magic not in MAGIC_TYPES or not 1 <= ndim <= 16:
    raise DataError(f'{path}: not a smallNORB matrix (magic {magic:#x}, ndim {ndim})')
  dims = struct.unpack(f'<{max(ndim, 3)}i', read_exact(f, 4 * max(ndim, 3), path))
  return np.dtype(MAGIC_TYPES[magic]), tuple(dims[:ndim])


@contextlib.contextmanager
def open_matrix(path: str, dtype: str, row_shape: Tuple[int, ...]) -> Iterator:
  """Opens a smallNORB matrix of rows `row_shape`; yields (file, number of rows).

  On leaving, checks that nothing follows the rows the header declares.
  """
  with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
    got, shape = read_header(f, path)
    if got != np.dtype(dtype) or tuple(shape[1:]) != row_shape:
      raise DataError(f'{path}: holds {got} {list(shape)}; expected {np.dtype(dtype)} '
                      f'{["N", *row_shape]}')
    yield f, shape[0]
    if read_some(f, 1, path):
      raise DataError(f'{path}: has bytes past the {shape[0]} rows its header declares')


def norb_examples(paths: Dict[str, str]) -> Iterator[Tuple[bytes, int, np.ndarray]]:
  """Streams (image_raw [2, 96, 96] bytes, label, meta [4]) one example at a time."""
  image_bytes = DEPTH * RAW_SIZE * RAW_SIZE
  with open_matrix(paths['dat'], 'u1', (DEPTH, RAW_SIZE, RAW_SIZE)) as (dat, count), \
       open_matrix(paths['cat'], '<i4', ()) as (cat, cat_count), \
       open_matrix(paths['info'], '<i4', (4,)) as (info, info_count):
    if not count == cat_count == info_count:
      raise DataError(f'smallNORB files disagree on the number of examples: {count} images, '
                      f'{cat_count} labels, {info_count} info rows ({paths["dat"]})')
    for i in range(count):
      label = struct.unpack('<i', read_exact(cat, 4, paths['cat']))[0]
      if not 0 <= label < NUM_CLASSES:
        raise DataError(f'{paths["cat"]}: label {label} of example {i} is not 0..4')
      yield (read_exact(dat, image_bytes, paths['dat']), label,
             np.frombuffer(read_exact(info, 16, paths['info']), '<i4'))


def example(image_raw: bytes, label: int, meta) -> tf.train.Example:
  return tf.train.Example(features=tf.train.Features(feature={
      'image_raw': bytes_feature(image_raw), 'label': int64_feature(label),
      'height': int64_feature(RAW_SIZE), 'width': int64_feature(RAW_SIZE),
      'depth': int64_feature(DEPTH), 'meta': int64_feature(list(meta))}))


def convert(raw_dir: str, output_dir: str, splits=('train', 'test')) -> Dict[str, int]:
  """Writes `{split}duo.tfrecords` (whole or not at all); returns examples per split."""
  tf.io.gfile.makedirs(output_dir)
  counts = {}
  for split in splits:
    paths = raw_paths(raw_dir, split)
    output = os.path.join(output_dir, f'{split}duo.tfrecords')
    with write_whole(output) as writer:
      counts[split] = 0
      for record in norb_examples(paths):
        writer.write(example(*record).SerializeToString())
        counts[split] += 1
    logging.info('wrote %d examples to %s', counts[split], output)
  return counts


def main(argv):
  """CLI: python -m input_data.norb --raw_dir=DIR --output_dir=DIR."""
  define = cli.input_and_output_dirs('raw_dir', 'folder holding the official smallNORB '
                                     '.mat(.gz) files', 'where trainduo/testduo.tfrecords are '
                                     'written')
  cli.run(argv, define, lambda f: convert(f.raw_dir, f.output_dir))


if __name__ == '__main__':
  cli.start(main)
