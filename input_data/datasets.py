"""Every dataset as a declaration: what it reads, accepts and how its data is prepared.

No TensorFlow, so flags are checked before it starts; a new dataset: docs/data_own.md.
"""

import dataclasses
from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

from configs.errors import UserError
from configs.registry import check_name

# RunConfig settings passed to a dataset when set, refused by one that does not declare them.
FLAG_OPTIONS = ('validate', 'distort', 'num_targets', 'generate', 'image_size', 'resize_mode',
                'channels', 'augment', 'download')
IMAGE_OPTIONS = ('validate', 'distort', 'image_size', 'resize_mode', 'channels', 'augment',
                 'crop_padding', 'validation_fraction')
CHOICES = {'num_targets': (1, 2), 'base_shift': ('per_pair', 'once'),
           'resize_mode': ('resize', 'pad', 'crop'), 'channels': (1, 3)}
AUGMENTATIONS = ('crop', 'flip', 'brightness', 'contrast', 'rotate')  # input_data/augment.py
PRESET = 'cifar10'  # augment=cifar10: cifar10's list; folder and tfds also take its preprocessing
VALIDATION_FRACTION = 0.1  # of train/, held out by validate=True where no split is declared
MNIST_IDX = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
             'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}
MNIST_DOWNLOAD = 'python -m input_data.download --dataset=mnist --output_dir={dir}'
NORB_SIZES = {48: 32, 32: 22}  # norb's image_size -> its size after augment 'crop' (2017 code)


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A dataset's declared facts (big_vision's datasets/core.py)."""
  reader: str  # input_data module whose `read(dataset, options)` gives the examples
  prepare: str  # the command that prepares --data_dir ('{dir}': that directory)
  options: Tuple[str, ...] = ()  # options beyond data_dir, split, batch_size, seed, repeat, shuffle
  files: Mapping[str, object] = dataclasses.field(default_factory=dict)  # split -> file(s)
  shape: Optional[Tuple[int, int, int]] = None  # stored [height, width, depth]; None: the data's
  num_classes: Optional[int] = None  # None: from the data
  augment: Tuple[str, ...] = ()  # the training augmentations distort=True means
  distort: bool = False  # distort's default
  check: Optional[Callable[[Mapping[str, object]], None]] = None  # UserError for a combination


def check_mnist(options: Mapping[str, object]):
  """mnist's combinations: pairs take no augmentation (as the original); the sampler's settings
  apply to generated digits only, base_shift to pairs only."""
  num_targets = options.get('num_targets') or 1
  if num_targets == 2 and augmentations('mnist', options):
    raise UserError('mnist: distortion applies to single-digit MNIST only (as the original)')
  base_shift = options.get('base_shift')
  if not options.get('generate') and any(
      options.get(k) is not None for k in ('pad', 'num_pairs', 'base_shift')):
    raise UserError('mnist: pad, num_pairs and base_shift apply with generate=True only; the '
                    'files carry the settings they were built with')
  if base_shift is not None and num_targets != 2:
    raise UserError(f'mnist: base_shift={base_shift!r} pairs MultiMNIST digits: it needs '
                    'num_targets=2')


def check_norb(options: Mapping[str, object]):
  """norb's image sizes: those the 2017 code took (NORB_SIZES)."""
  size = parse_size('norb', options.get('image_size'))
  if size and (size[0] != size[1] or size[0] not in NORB_SIZES):
    raise UserError(f'norb image_size must be one of {sorted(NORB_SIZES)}, got '
                    f'{options.get("image_size")}')


DATASETS = {
    'mnist': Dataset(
        'mnist', MNIST_DOWNLOAD.format(dir='data/mnist_raw') + ', then python -m '
        'input_data.mnist_shift --data_dir=data/mnist_raw --output_dir={dir} --split=train '
        '--shift=2 (and --split=test --shift=0)',
        ('validate', 'distort', 'augment', 'num_targets', 'generate', 'shift', 'pad', 'num_pairs',
         'base_shift'), MNIST_IDX, num_classes=10, augment=('crop', 'rotate'),
        check=check_mnist),
    'affnist': Dataset(
        'affnist', 'python -m input_data.mnist_shift --data_dir=RAW_MNIST_DIR --output_dir={dir} '
        '--split=train --shift=6 --pad=6 and python -m input_data.affnist '
        '--mat_dir=AFFNIST_MAT_DIR --output_dir={dir}', ('validate',),
        {'train': 'train_6shifted_mnist.tfrecords', 'test': 'test_affnist.tfrecords',
         'valid_test': 'validation_affnist.tfrecords'}, (40, 40, 1), 10),
    'cifar10': Dataset(
        'cifar10', 'python -m input_data.download --dataset=cifar10 --output_dir={dir}',
        ('validate', 'distort', 'augment'),
        {'train': [f'data_batch_{i}.bin' for i in range(1, 6)], 'test': ['test_batch.bin'],
         'valid_train': [f'data_batch_{i}.bin' for i in range(1, 5)],
         'valid_test': ['data_batch_5.bin']}, (32, 32, 3), 10,
        ('crop', 'flip', 'brightness', 'contrast'), distort=True),
    'norb': Dataset(
        'norb', 'python -m input_data.norb --raw_dir=SMALLNORB_DIR --output_dir={dir}',
        ('distort', 'augment', 'image_size'),
        {'train': 'trainduo.tfrecords', 'test': 'testduo.tfrecords'}, (96, 96, 2), 5,
        ('brightness', 'contrast', 'crop'), distort=True, check=check_norb),
    'folder': Dataset(
        'folder', 'python -m input_data.folder --make_from_idx=IDX_DIR --output_dir={dir}, or '
        'any DIR/{{train,test}}/<class>/<images>',
        IMAGE_OPTIONS + ('validation_seed', 'check_files'), augment=('crop', 'flip')),
    'tfds': Dataset(
        'tfds_data', 'tfds build NAME --data_dir={dir}',
        IMAGE_OPTIONS + ('download', 'tfds_name', 'image_key', 'label_key', 'train_split',
                         'test_split'), augment=('crop', 'flip')),
    # The worked example of docs/data_own.md: Kuzushiji-MNIST in MNIST's IDX format.
    'kmnist': Dataset(
        'idx', 'download the four IDX files of https://github.com/rois-codh/kmnist (their '
        'names are MNIST\'s: train-images-idx3-ubyte.gz, ...) into {dir}',
        ('validate', 'distort', 'augment'), MNIST_IDX, (28, 28, 1), 10, ('crop', 'rotate')),
}


def declared(name: str) -> Dataset:
  """The declaration of --dataset=name ('tfds:NAME': tfds's); UserError if none."""
  name = 'tfds' if name.startswith('tfds:') else name
  check_name('dataset', name, DATASETS)
  return DATASETS[name]


def check_options(name: str, options: Mapping[str, object]):
  """UserError for the first option `name` does not declare (naming those that do), a value
  not among its CHOICES, a bad image_size or augment, or a combination the dataset refuses."""
  dataset = declared(name)
  for option, value in options.items():
    if option in dataset.options:
      continue
    shown = str(value).lower() if isinstance(value, bool) else value
    flag = f'--{option}' if value is True else f'--{option}={shown}'
    takers = sorted(n for n, d in DATASETS.items() if option in d.options)
    if not takers:
      raise UserError(f'{flag}: no dataset takes option {option!r}; --dataset={name} takes: '
                      f'{", ".join(dataset.options)}')
    raise UserError(f'{flag} applies to --dataset={", ".join(takers)} only, not {name}; '
                    f'drop --{option}')
  short = name.split(':')[0]
  for option, value in options.items():
    if option in CHOICES and value is not None:
      check_choice(short, option, value)
  parse_size(short, options.get('image_size'))
  parse_augment(short, options.get('augment'))
  if dataset.check:
    dataset.check(options)


def check_choice(name: str, option: str, value):
  if value not in CHOICES[option]:
    raise UserError(f'{name}: {option}={value!r} is not one of '
                    f'{", ".join(map(str, CHOICES[option]))}')


def parse_size(name: str, image_size) -> Optional[Tuple[int, int]]:
  """None, N, 'N', 'HxW' or (H, W) -> (height, width) of positive ints, or None."""
  if image_size is None or image_size == '':
    return None
  parts = image_size if isinstance(image_size, (tuple, list)) else (
      str(image_size).lower().split('x'))
  parts = [str(p).strip() for p in parts] * (2 if len(parts) == 1 else 1)
  if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
    raise UserError(f'{name}: image_size must be N, "HxW" or (H, W) of positive ints, got '
                    f'{image_size!r}')
  return int(parts[0]), int(parts[1])


def parse_augment(name: str, augment: Union[None, str, Sequence[str]]) -> Tuple[str, ...]:
  """The names in 'crop,flip' or ['crop', 'flip']; UserError for an unknown one."""
  if isinstance(augment, str):
    augment = augment.split(',')
  chosen = tuple(a.strip().lower() for a in (augment or ()) if a.strip())
  unknown = [a for a in chosen if a not in (*AUGMENTATIONS, PRESET)]
  if unknown:
    raise UserError(f'{name}: unknown augment {", ".join(unknown)}; expected a comma-separated '
                    f'list of: {", ".join(AUGMENTATIONS)}, or {PRESET} alone')
  if PRESET in chosen and len(chosen) > 1:
    raise UserError(f"{name}: augment '{PRESET}' already crops and flips; use it alone")
  return chosen


def augmentations(name: str, options: Mapping[str, object]) -> Tuple[str, ...]:
  """The training split's distortions: none with distort=False; else `augment` (cifar10: that
  dataset's list), or the declared list when distorting (distort, else the declared default)."""
  chosen = parse_augment(name, options.get('augment'))
  distort = options.get('distort')
  if distort is False:
    return ()
  if chosen == (PRESET,):
    return DATASETS[PRESET].augment
  dataset = declared(name)
  return chosen or (dataset.augment if (dataset.distort if distort is None else distort) else ())
