"""TensorFlow Datasets as inputs: `build_dataset('tfds:NAME', data_dir=TFDS_DATA_DIR, ...)`,
images prepared as folder datasets' (docs/data_own.md "TensorFlow Datasets")."""

from absl import logging

from configs.errors import UserError
from input_data import DataError, builder, images
from input_data.pipeline import unconverted


def load_builder(tfds, name: str, dataset, data_dir, download: bool):
  """The prepared builder of `name`; DataError when unknown or not prepared."""
  if not name:
    raise UserError('tfds: name the dataset: tfds:NAME, e.g. tfds:fashion_mnist')
  try:
    found = tfds.builder(name, data_dir=data_dir or None)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DataError(f'tfds:{name} is neither a TFDS dataset nor prepared in '
                    f'{data_dir or "the TFDS data dir"}; see tfds.list_builders() for names') from e
  if not found.is_prepared():
    where = found.data_dir_root
    command = dataset.prepare.format(dir=where).replace('NAME', name.split(':')[0])
    if not download:
      raise DataError(f'tfds:{name} is not prepared in {where}; prepare it (downloads) with: '
                      f'{command}, or pass download=True')
    found.download_and_prepare()
  return found


def find_keys(tfds, info, image_key, label_key):
  """(image key, label key): the given ones, else supervised_keys, else the only Image and
  ClassLabel features; DataError naming the candidates."""
  supervised = info.supervised_keys if isinstance(info.supervised_keys, tuple) else ()
  chosen = []
  for i, (role, key, kind) in enumerate((('image', image_key, tfds.features.Image),
                                         ('label', label_key, tfds.features.ClassLabel))):
    candidates = [k for k, f in info.features.items() if isinstance(f, kind)]
    if key is None and len(supervised) == 2 and supervised[i] in candidates:
      key = supervised[i]
    if key is None and len(candidates) == 1:
      key = candidates[0]
    if key not in candidates:
      shown = ', '.join(sorted(candidates)) or 'none'
      raise DataError(f'tfds:{info.name}: {f"{key!r} is not" if key else "cannot tell"} the '
                      f'{role} feature ({kind.__name__} features: {shown}); pass '
                      f'{role}_key=one of them')
    chosen.append(key)
  return tuple(chosen)


def read_split(info, name, options) -> str:
  """The TFDS split read for options.split: train_split, test_split or, with validate, a slice
  of train_split."""
  split, validate = options.split, options.get('validate')
  wanted = (options.get('train_split', 'train') if split == 'train' or validate else
            options.get('test_split', 'test'))
  if wanted not in info.splits:
    fix = ' or pass validate=True' if split == 'test' else ''
    raise DataError(f'tfds:{name} has no split {wanted!r} (it has: '
                    f'{", ".join(info.splits.keys())}); pass {split}_split=one of them{fix}')
  if not validate:
    return wanted
  total = info.splits[wanted].num_examples
  cut = total - images.held_out(options, total)
  return f'{wanted}[:{cut}]' if split == 'train' else f'{wanted}[{cut}:]'


def read(dataset, options) -> builder.Examples:
  """The images of TFDS dataset tfds:NAME (see the module docstring)."""
  name = options.get('tfds_name', options.name[len('tfds:'):])
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError("tfds:NAME datasets need tensorflow-datasets: pip install -e '.[tfds]' "
                    '(in the repository root)') from e
  found = load_builder(tfds, name, dataset, options.data_dir, options.get('download'))
  info = found.info
  image_key, label_key = find_keys(tfds, info, options.get('image_key'),
                                   options.get('label_key'))
  which = read_split(info, name, options)

  def examples(split):  # encoded images and labels, in TFDS's stored order
    ds = found.as_dataset(split=split, shuffle_files=False,
                          decoders={image_key: tfds.decode.SkipDecoding()})
    return ds.map(unconverted(lambda x: {'encoded': x[image_key], 'label': x[label_key]}))

  height, width, stored = info.features[image_key].shape
  if options.get('image_size') is None and None in (height, width):
    first = next(iter(examples(options.get('train_split', 'train')).take(1)))
    height, width = images.stored(first['encoded']).shape[:2]
  depth = options.get('channels') or (3 if (stored or 3) >= 3 else 1)
  names = tuple(info.features[label_key].names)
  num_examples = info.splits[which].num_examples
  source = images.examples(examples(which), options, (height, width), depth, len(names),
                           num_examples=num_examples, class_names=names)
  logging.info('tfds:%s %s split (%s): %d images, %d classes, %dx%dx%d', name, options.split,
               which, num_examples, len(names), *source.shape)
  return source
