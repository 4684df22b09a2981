"""The affNIST converter: the official .mat files -> TFRecords (see input_data/affnist.py).

  python -m input_data.affnist --mat_dir=DIR --output_dir=DIR
"""

import os
from typing import Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from input_data import DataError
from input_data.datasets import DATASETS
from input_data.pipeline import require_files
from input_data.tools import cli
from input_data.tools.records import image_example, write_whole

IMAGE_SIZE, _, _ = DATASETS['affnist'].shape
NUM_CLASSES = DATASETS['affnist'].num_classes


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


def convert(mat_dir: str, output_dir: str, names: Sequence[str] = ('test', 'validation')):
  """Writes `{name}_affnist.tfrecords`, whole, for each name found; 'test' is required."""
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
    count = 0
    with write_whole(path) as writer:
      for source in sources:
        images, labels = load_mat(source)
        for image, label in zip(images, labels):
          writer.write(image_example(image, label))
        count += len(labels)
        logging.info('%s: %d examples', source, len(labels))
    logging.info('wrote %d examples to %s', count, path)


def main(argv):
  """CLI: python -m input_data.affnist --mat_dir=DIR --output_dir=DIR."""
  cli.run_converter(argv, convert, 'mat_dir', 'folder holding test.mat (and validation.mat)',
                    'where *_affnist.tfrecords are written')
