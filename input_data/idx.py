"""IDX files (MNIST's format, plain or gzip), the raw MNIST splits (the validation cut), and
`read`: the reader of datasets declared as IDX files (e.g. kmnist)."""

import gzip
import os
import struct
import zlib
from typing import Mapping, Optional, Tuple

import numpy as np

from input_data import DataError
from input_data.datasets import MNIST_DOWNLOAD, MNIST_IDX

SPLITS = ('train', 'test', 'valid_train', 'valid_test')
WHERE_TO_GET = (f'download them with `{MNIST_DOWNLOAD.format(dir="DIR")}` (or '
                '--dataset=fashion_mnist), or use the 5,000 packaged '
                'digits in input_data.mnist.default_raw_dir() or Debian\'s dataset-fashion-mnist '
                '(/usr/share/datasets/fashion-mnist)')


def read_array(path: str, ndim: int) -> np.ndarray:
  """uint8 [N, H, W] (ndim 3, images) or [N] (ndim 1, labels) of an IDX file."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
    if data[:2] == b'\x1f\x8b':
      data = gzip.decompress(data)
  except (OSError, EOFError, zlib.error) as e:  # EOFError: a truncated gzip stream
    raise DataError(f'cannot read IDX file {path}: {e!r}') from e
  expected = bytes([0, 0, 0x08, ndim])  # 0x08: uint8
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


def validation_cut(num_train: int) -> int:
  """How many training images, from the start, are valid_test: the original's 10,000 of
  60,000, 1/6 of a smaller set."""
  return min(10000, num_train // 6)


def load_split(raw_dir: str, split: str, files: Mapping = MNIST_IDX,
               where_to_get: str = WHERE_TO_GET, num_classes: Optional[int] = None,
               name: str = 'MNIST') -> Tuple[np.ndarray, np.ndarray]:
  """uint8 images [N, H, W] and labels [N] of a split (SPLITS) of a dir of IDX files (`files`,
  plain or .gz); with num_classes, a label past num_classes - 1 is a DataError naming `name`."""
  if split not in SPLITS:
    raise DataError(f'unknown MNIST split {split!r}; expected one of: {", ".join(SPLITS)}')
  found, missing = [], []
  for file in files['test' if split == 'test' else 'train']:
    existing = [p for p in (os.path.join(raw_dir, file + ext) for ext in ('', '.gz'))
                if os.path.isfile(p)]
    (found if existing else missing).append(existing[0] if existing else file + '[.gz]')
  if missing:
    raise DataError(f'missing raw MNIST file(s) in {raw_dir}: {", ".join(missing)}; '
                    f'{where_to_get}')
  images_path, labels_path = found
  images, labels = read_array(images_path, 3), read_array(labels_path, 1)
  if len(images) != len(labels):
    raise DataError(f'{images_path} holds {len(images)} images but {labels_path} holds '
                    f'{len(labels)} labels')
  if num_classes and labels.size and labels.max() >= num_classes:
    raise DataError(f'labels in {labels_path} go up to {labels.max()}; {name} has classes '
                    f'0-{num_classes - 1}')
  if split.startswith('valid'):
    cut = validation_cut(len(images))
    if not cut:
      raise DataError(f'{images_path} holds {len(images)} images: too few for {split}, which '
                      'needs at least 6 (1/6 are held out); use a larger training set')
    part = slice(cut, None) if split == 'valid_train' else slice(0, cut)
    images, labels = images[part], labels[part]
  return images, labels


def read(dataset, options):
  """builder.Examples of a dataset declared as IDX files, read as MNIST's (input_data/mnist.py)."""
  # pylint: disable=g-import-not-at-top; the IDX format itself needs no TensorFlow
  import tensorflow as tf
  from input_data import augment, builder
  split = f'valid_{options.split}' if options.get('validate') else options.split
  images, labels = load_split(options.data_dir, split, dataset.files,
                              dataset.prepare.format(dir=options.data_dir), dataset.num_classes,
                              options.name)
  examples = tf.data.Dataset.from_tensor_slices({'image': images[..., None],
                                                 'label': labels.astype(np.int32)})
  size, prepare = augment.for_digits(*images.shape[1:], options.augment)
  return builder.Examples(examples, prepare, (*size, 1), dataset.num_classes, len(labels))
