"""Writes IDX files (MNIST, Fashion-MNIST) as a folder dataset of PNGs (see input_data/folder.py).

  python -m input_data.folder --make_from_idx=/usr/share/datasets/fashion-mnist \\
    --output_dir=data/fashion_folder
"""

import os
from typing import Dict, Sequence

from absl import flags
from absl import logging
import tensorflow as tf

from configs.errors import UserError
from input_data import DataError, idx
from input_data.pipeline import AUTOTUNE
from input_data.tools import cli


def make_from_idx(raw_dir: str, output_dir: str, names: Sequence[str] = ()) -> Dict[str, int]:
  """Writes raw_dir's IDX files as output_dir/{train,test}/<label>[_NAME]/<index>.png (zero-padded,
  so they sort as numbers), each split whole; returns the images written per split."""
  for split in ('train', 'test'):
    if tf.io.gfile.exists(os.path.join(output_dir, split)):
      raise DataError(f'{os.path.join(output_dir, split)} already exists; remove it or choose '
                      'another --output_dir')
  counts = {}
  for split in ('train', 'test'):
    pixels, labels = idx.load_split(raw_dir, split)
    num_classes = len(names) or int(labels.max()) + 1
    if labels.max() >= num_classes:
      raise UserError(f'{len(names)} class names given, but the labels go up to {labels.max()}')
    width = len(str(num_classes - 1))
    folders = [f'{i:0{width}d}' + (f'_{names[i]}' if names else '') for i in range(num_classes)]
    partial = os.path.join(output_dir, split + '.partial')
    if tf.io.gfile.exists(partial):
      tf.io.gfile.rmtree(partial)  # left by an interrupted run
    for folder in folders:
      tf.io.gfile.makedirs(os.path.join(partial, folder))
    digits = len(str(len(labels) - 1))
    paths = [os.path.join(partial, folders[label], f'{i:0{digits}d}.png')
             for i, label in enumerate(labels)]
    written = tf.data.Dataset.from_tensor_slices((pixels[..., None], paths)).map(
        _write_png, num_parallel_calls=AUTOTUNE)
    written.reduce(0, lambda n, _: n + 1)
    tf.io.gfile.rename(partial, os.path.join(output_dir, split))
    counts[split] = len(labels)
  return counts


def _write_png(image, path):
  with tf.control_dependencies([tf.io.write_file(path, tf.io.encode_png(image))]):
    return tf.identity(path)


def _define_flags(values: flags.FlagValues):
  flags.DEFINE_string('make_from_idx', '', 'Folder of IDX files (MNIST\'s names, plain or .gz) '
                      'to write as folders of PNGs.', flag_values=values)
  flags.DEFINE_string('output_dir', '', 'Where to write train/ and test/.', flag_values=values)
  flags.DEFINE_list('class_names', [], 'Optional names appended to the class folders, in label '
                    'order (e.g. Fashion-MNIST\'s).', flag_values=values)


def _make_from_flags(f: flags.FlagValues):
  if not f.make_from_idx or not f.output_dir:
    raise UserError('pass --make_from_idx=IDX_DIR and --output_dir=DIR')
  bad = [n for n in f.class_names if not n or '/' in n or n.startswith('.')]
  if bad:
    raise UserError(f'--class_names: {bad[0]!r} cannot be a folder name')
  counts = make_from_idx(f.make_from_idx, f.output_dir, f.class_names)
  logging.info('wrote %s train and %s test PNGs to %s', counts['train'], counts['test'],
               f.output_dir)


def main(argv):
  """CLI: python -m input_data.folder --make_from_idx=IDX_DIR --output_dir=DIR."""
  cli.run(argv, _define_flags, _make_from_flags)
