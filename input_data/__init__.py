"""Datasets: files on disk -> tf.data pipelines of batch dicts.

Every dataset yields batches as dicts of tensors:
  images        float32 [batch, height, width, depth]
  labels        float32 [batch, num_classes]: one-hot; the sum of two one-hots for two targets
  recons_image  float32 [batch, height, width, depth]: what the decoder reconstructs
  recons_label  int32 [batch]: class whose capsule the decoder sees
  spare_image, spare_label: the second target's image and class (only when num_targets == 2)
and describes itself with a configs.spec.DatasetSpec. Which module holds what: docs/data.md.
"""

from configs.errors import UserError
from configs.spec import DatasetSpec

__all__ = ['DataError', 'DatasetSpec', 'build_dataset', 'test_preparation']


class DataError(UserError):
  """Missing, corrupt or mismatched data files."""


def build_dataset(name: str, **options):
  """(tf.data.Dataset of batch dicts, DatasetSpec) of dataset `name` (input_data/builder.py)."""
  from input_data import builder  # pylint: disable=g-import-not-at-top; it imports TensorFlow
  return builder.build(name, **options)


def test_preparation(name: str, **options):
  """(spec, stored image shape, uint8 images -> the model's images) of dataset `name`'s test
  split, for a SavedModel (input_data/builder.py)."""
  from input_data import builder  # pylint: disable=g-import-not-at-top; it imports TensorFlow
  return builder.test_preparation(name, **options)
