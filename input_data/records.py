"""tf.train.Example helpers and file checks shared by the dataset modules."""

import os
from typing import Iterable, List

import tensorflow as tf

from input_data import DataError


def int64_feature(values) -> tf.train.Feature:
  if not isinstance(values, (list, tuple)):
    values = [values]
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def bytes_feature(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def require_files(paths: Iterable[str], how_to_build: str) -> List[str]:
  """Returns `paths` as a list, or raises DataError naming every missing one and the fix."""
  paths = list(paths)
  missing = [p for p in paths if not tf.io.gfile.exists(p)]
  if missing:
    where = os.path.dirname(missing[0]) or '.'
    raise DataError(f'missing data file(s) in {where}: {", ".join(os.path.basename(p) for p in missing)}; '
                    f'build them with: {how_to_build}')
  return paths
