"""MNIST's IDX files: read and write uint8 images [N, H, W] and labels [N], plain or gzip.

Also the raw MNIST layout (file names per split, the validation cut) that the shifted-MNIST
builder and the on-the-fly generator share.
"""

import gzip
import os
import struct
import zlib
from typing import Tuple

import numpy as np

from input_data import DataError

_UBYTE = 0x08
_GZIP_MAGIC = b'\x1f\x8b'

# The four files of a raw MNIST directory (the names LeCun's site, Fashion-MNIST and
# Debian's dataset-fashion-mnist use), each plain or gzipped.
RAW_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
# Splits of the builder: the validation pair cuts the training files as the original did.
SPLITS = ('train', 'test', 'valid_train', 'valid_test')
WHERE_TO_GET = ('download them with `python -m input_data.download --dataset=mnist '
                '--output_dir=DIR` (or --dataset=fashion_mnist), or use the 5,000 packaged '
                'digits in input_data.mnist.default_raw_dir() or Debian\'s dataset-fashion-mnist '
                '(/usr/share/datasets/fashion-mnist)')


def read_images(path: str) -> np.ndarray:
  """Reads an IDX image file as uint8 [N, H, W]."""
  return _read(path, ndim=3)


def read_labels(path: str) -> np.ndarray:
  """Reads an IDX label file as uint8 [N]."""
  return _read(path, ndim=1)


def write_images(path: str, images: np.ndarray) -> None:
  """Writes uint8 [N, H, W] as an IDX file; gzipped when `path` ends in .gz."""
  _write(path, images, ndim=3)


def write_labels(path: str, labels: np.ndarray) -> None:
  """Writes uint8 [N] as an IDX file; gzipped when `path` ends in .gz."""
  _write(path, labels, ndim=1)


def _write(path, array, ndim):
  array = np.asarray(array)
  if array.ndim != ndim or array.dtype != np.uint8:
    raise ValueError(f'expected uint8 with {ndim} dims for {path}, got {array.dtype} {array.shape}')
  header = bytes([0, 0, _UBYTE, ndim]) + struct.pack(f'>{ndim}I', *array.shape)
  data = header + np.ascontiguousarray(array).tobytes()
  if path.endswith('.gz'):
    data = gzip.compress(data, mtime=0)  # mtime=0: the same arrays give the same bytes
  with open(path, 'wb') as f:
    f.write(data)


def _read(path, ndim):
  """Parses one IDX file, naming the file in every error."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
    if data[:2] == _GZIP_MAGIC:
      data = gzip.decompress(data)
  except (OSError, EOFError, zlib.error) as e:  # EOFError: a truncated gzip stream
    raise DataError(f'cannot read IDX file {path}: {e!r}') from e
  expected = bytes([0, 0, _UBYTE, ndim])
  if data[:4] != expected:
    raise DataError(f'bad magic number in IDX file {path}: got 0x{data[:4].hex()}, expected '
                    f'0x{expected.hex()} (uint8 with {ndim} dims); is it an MNIST '
                    f'{"image" if ndim == 3 else "label"} file?')
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise DataError(f'truncated IDX file {path}: {len(data)} bytes, shorter than its header')
  shape = struct.unpack(f'>{ndim}I', data[4:header_size])
  size = int(np.prod(shape))
  if len(data) - header_size != size:
    raise DataError(f'truncated IDX file {path}: header says {"x".join(map(str, shape))} = '
                    f'{size} bytes of data, found {len(data) - header_size}')
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


def find_raw_files(raw_dir: str, source: str) -> Tuple[str, str]:
  """Returns the (images, labels) paths of 'train' or 'test' in `raw_dir`, plain or .gz."""
  found, missing = [], []
  for name in RAW_FILES[source]:
    candidates = [os.path.join(raw_dir, name + ext) for ext in ('', '.gz')]
    existing = [p for p in candidates if os.path.isfile(p)]
    (found if existing else missing).append(existing[0] if existing else name + '[.gz]')
  if missing:
    raise DataError(f'missing raw MNIST file(s) in {raw_dir}: {", ".join(missing)}; '
                    f'{WHERE_TO_GET}')
  return found[0], found[1]


def validation_cut(num_train: int) -> int:
  """How many training images, from the start, --validate holds out as valid_test.

  The original's builder holds out the first 10,000 of MNIST's 60,000 (1/6) and trains on
  images 10,000..59,999; a smaller training set (the packaged 4,000 digits) keeps that 1/6.
  """
  return min(10000, num_train // 6)


def load_split(raw_dir: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
  """Returns uint8 images [N, H, W] and labels [N] of a builder split of a raw MNIST dir.

  valid_test is the first validation_cut images of the training files, valid_train the rest
  (MNIST: images 0..9,999 and 10,000..59,999, as the original).
  """
  if split not in SPLITS:
    raise DataError(f'unknown MNIST split {split!r}; expected one of: {", ".join(SPLITS)}')
  images_path, labels_path = find_raw_files(raw_dir, 'test' if split == 'test' else 'train')
  images, labels = read_images(images_path), read_labels(labels_path)
  if len(images) != len(labels):
    raise DataError(f'{images_path} holds {len(images)} images but {labels_path} holds '
                    f'{len(labels)} labels')
  if split.startswith('valid'):
    cut = validation_cut(len(images))
    if not cut:
      raise DataError(f'{images_path} holds {len(images)} images: too few for {split}, which '
                      'needs at least 6 (1/6 are held out); use a larger training set')
    part = slice(cut, None) if split == 'valid_train' else slice(0, cut)
    images, labels = images[part], labels[part]
  return images, labels
