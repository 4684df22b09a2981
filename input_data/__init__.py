"""Datasets: files on disk -> tf.data pipelines of batch dicts, plus builders (CLIs).

Every dataset yields batches as dicts of tensors:
  images        float32 [batch, height, width, depth]
  labels        float32 [batch, num_classes]: one-hot; the sum of two one-hots for two targets
  recons_image  float32 [batch, height, width, depth]: what the decoder reconstructs
  recons_label  int32 [batch]: class whose capsule the decoder sees
  spare_image, spare_label: the second target's image and class (only when num_targets == 2)
and describes itself with a `DatasetSpec` (the static facts a model is built from).

`build_dataset(name, ...)` looks the name up in the registry below.
"""

import inspect

from configs.errors import UserError
from configs.registry import Registry
from configs.spec import DatasetSpec  # noqa: F401


class DataError(UserError):
  """Missing, corrupt or mismatched data files."""


_DATASETS = Registry('dataset')
register = _DATASETS.register  # decorator: `fn(*, data_dir, split, batch_size, ...)`


def check_dataset_name(name: str):
  """Raises UserError listing the datasets unless `name` is one (or `tfds:NAME`)."""
  _import_builders()
  if not name.startswith('tfds:'):
    _DATASETS.get(name)


def build_dataset(name: str, **kwargs):
  """Returns (tf.data.Dataset of batch dicts, DatasetSpec) for a registered dataset.

  Keyword arguments (all datasets): data_dir, split ('train' | 'test'), batch_size, seed=None,
  repeat=None (default: repeat when split == 'train'), shuffle=None (same default); and those
  of some datasets only, e.g. validate, distort, num_targets, generate (see each `build`).
  An option the dataset's builder does not take is dropped when it has the default value of
  the builders that do take it, and refused otherwise (so `--generate` never goes unheard).
  """
  _import_builders()
  if name.startswith('tfds:'):  # any TFDS dataset: 'tfds:NAME[/CONFIG][:VERSION]'
    name, kwargs = 'tfds', dict(kwargs, tfds_name=name[len('tfds:'):])
  builder = _DATASETS.get(name)
  return builder(**_options_for(name, builder, kwargs))


def _options_for(name, builder, kwargs):
  """`kwargs` less the options `builder` does not take; a UserError for one not at default."""
  taken = inspect.signature(builder).parameters
  kept = {}
  for option, value in kwargs.items():
    if option in taken:
      kept[option] = value
      continue
    takers = {n: inspect.signature(_DATASETS.get(n)).parameters.get(option)
              for n in _DATASETS.names()}
    takers = {n: p for n, p in takers.items() if p is not None}
    if takers and all(value == p.default and type(value) is type(p.default)
                      for p in takers.values()):
      continue  # not asked for: the default
    shown = str(value).lower() if isinstance(value, bool) else value
    flag = f'--{option}' if value is True else f'--{option}={shown}'
    if not takers:
      raise UserError(f'{flag}: no dataset takes option {option!r}; --dataset={name} takes: '
                      f'{", ".join(taken)}')
    raise UserError(f'{flag} applies to --dataset={", ".join(sorted(takers))} only, not {name}; '
                    f'drop --{option}')
  return kept


def _import_builders():
  # Importing a dataset module registers it.
  # pylint: disable=g-import-not-at-top,unused-import
  from input_data import mnist, affnist, cifar10, norb, folder, tfds_data  # noqa: F401
