"""The smallNORB converter: the official .mat(.gz) files -> TFRecords (see input_data/norb.py).

  python -m input_data.norb --raw_dir=DIR --output_dir=DIR
"""

import contextlib
import gzip
import os
import struct
import zlib
from typing import BinaryIO, Dict, Iterator, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from input_data import DataError
from input_data.datasets import DATASETS
from input_data.pipeline import require_files
from input_data.tools import cli
from input_data.tools.records import bytes_feature, int64_feature, write_whole

RAW_SIZE, _, DEPTH = DATASETS['norb'].shape
NUM_CLASSES = DATASETS['norb'].num_classes
RAW_FILES = {'train': 'smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat',
             'test': 'smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat'}
MAGIC_TYPES = {0x1E3D4C51: '<f4', 0x1E3D4C53: '<f8', 0x1E3D4C54: '<i4', 0x1E3D4C55: 'u1',
               0x1E3D4C56: '<i2'}
RAW_URL = 'https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/'


def raw_paths(raw_dir: str, split: str) -> Dict[str, str]:
  """{'dat'|'cat'|'info': path} of a split's official files, each plain or gzipped."""
  paths = {}
  for kind in ('dat', 'cat', 'info'):
    plain = os.path.join(raw_dir, RAW_FILES[split].format(kind))
    paths[kind] = plain if os.path.exists(plain) or not os.path.exists(plain + '.gz') else (
        plain + '.gz')
  require_files(paths.values(), f'download them (.mat.gz is fine) from {RAW_URL} into {raw_dir}')
  return paths


def read_exact(f: BinaryIO, size: int, path: str, exact: bool = True) -> bytes:
  """`size` bytes of `f` (up to, if not exact); DataError naming `path` if unreadable or short."""
  try:
    data = f.read(size)
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f'{path}: unreadable ({e}); download it again') from e
  if exact and len(data) != size:
    raise DataError(f'{path} is truncated: wanted {size} more bytes, got {len(data)}; '
                    'download it again')
  return data


@contextlib.contextmanager
def open_matrix(path: str, dtype: str, row_shape: Tuple[int, ...]) -> Iterator:
  """Yields (file, number of rows) of a smallNORB matrix, then checks nothing follows the rows."""
  with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
    magic, ndim = struct.unpack('<iI', read_exact(f, 8, path))
    if magic not in MAGIC_TYPES or not 1 <= ndim <= 16:
      raise DataError(f'{path}: not a smallNORB matrix (magic {magic:#x}, ndim {ndim})')
    # The header stores at least 3 dimensions.
    dims = struct.unpack(f'<{max(ndim, 3)}i', read_exact(f, 4 * max(ndim, 3), path))
    got, shape = np.dtype(MAGIC_TYPES[magic]), dims[:ndim]
    if got != np.dtype(dtype) or shape[1:] != row_shape:
      raise DataError(f'{path}: holds {got} {list(shape)}; expected {np.dtype(dtype)} '
                      f'{["N", *row_shape]}')
    yield f, shape[0]
    if read_exact(f, 1, path, exact=False):
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
      'depth': int64_feature(DEPTH), 'meta': int64_feature(meta)}))


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
        writer.write(example(*record).SerializeToString(deterministic=True))
        counts[split] += 1
    logging.info('wrote %d examples to %s', counts[split], output)
  return counts


def main(argv):
  """CLI: python -m input_data.norb --raw_dir=DIR --output_dir=DIR."""
  cli.run_converter(argv, convert, 'raw_dir', 'folder holding the official smallNORB .mat(.gz) '
                    'files', 'where trainduo/testduo.tfrecords are written')
