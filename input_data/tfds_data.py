"""TensorFlow Datasets as inputs: `build_dataset('tfds:NAME', data_dir=TFDS_DATA_DIR, ...)`,
images prepared as folder datasets' (docs/data_own.md "TensorFlow Datasets")."""

from absl import logging
import tensorflow as tf

from configs.errors import UserError
from input_data import DataError, builder, images
from input_data.pipeline import unconverted

INSTALL = "pip install -e '.[tfds]' (in the repository root)"


def import_tfds():
  """The tensorflow_datasets module, or a UserError saying how to install it."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError(f'tfds:NAME datasets need tensorflow-datasets: {INSTALL}') from e
  return tfds


def load_builder(tfds, name: str, dataset, data_dir, download: bool):
  """The prepared builder of `name`; DataError when unknown or not prepared."""
  if not name:
    raise UserError('tfds: name the dataset: tfds:NAME, e.g. tfds:fashion_mnist')
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DataError(f'tfds:{name} is neither a TFDS dataset nor prepared in '
                    f'{data_dir or "the TFDS data dir"}; see tfds.list_builders() for names') from e
  if not builder.is_prepared():
    where = builder.data_dir_root
    command = dataset.prepare.format(dir=where).replace('NAME', name.split(':')[0])
    if not download:
      raise DataError(f'tfds:{name} is not prepared in {where}; prepare it (downloads) with: '
                      f'{command}, or pass download=True')
    builder.download_and_prepare()
  return builder


def find_keys(tfds, info, image_key, label_key):
  """(image key, label key): the given ones, else supervised_keys, else the only Image and
  ClassLabel features; DataError naming the candidates."""
  features = info.features
  kinds = {'image': tfds.features.Image, 'label': tfds.features.ClassLabel}
  supervised = info.supervised_keys if isinstance(info.supervised_keys, tuple) else ()
  chosen = {}
  for role, key, kind in (('image', image_key, kinds['image']),
                          ('label', label_key, kinds['label'])):
    candidates = [k for k, f in features.items() if isinstance(f, kind)]
    if key is None and len(supervised) == 2 and supervised[role == 'label'] in candidates:
      key = supervised[role == 'label']
    if key is None and len(candidates) == 1:
      key = candidates[0]
    if key not in candidates:
      shown = ', '.join(sorted(candidates)) or 'none'
      raise DataError(f'tfds:{info.name}: {f"{key!r} is not" if key else "cannot tell"} the '
                      f'{role} feature ({kind.__name__} features: {shown}); pass '
                      f'{role}_key=one of them')
    chosen[role] = key
  return chosen['image'], chosen['label']


def read_split(info, name, split, train_split, test_split, validate, options) -> str:
  """The TFDS split string read for `split`: train_split, test_split or a slice of train."""
  wanted = train_split if split == 'train' or validate else test_split
  if wanted not in info.splits:
    fix = ' or pass validate=True' if split == 'test' else ''
    raise DataError(f'tfds:{name} has no split {wanted!r} (it has: '
                    f'{", ".join(info.splits.keys())}); pass {split}_split=one of them{fix}')
  if not validate:
    return wanted
  total = info.splits[wanted].num_examples
  cut = total - images.held_out(options, total)
  return f'{wanted}[:{cut}]' if split == 'train' else f'{wanted}[{cut}:]'


def _examples(tfds, builder, split, image_key, label_key):
  """The split's encoded images and labels, in TFDS's stored order."""
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          decoders={image_key: tfds.decode.SkipDecoding()})
  return ds.map(unconverted(lambda x: {'encoded': x[image_key], 'label': x[label_key]}))


def read(dataset, options) -> builder.Examples:
  """The images of TFDS dataset tfds:NAME (see the module docstring)."""
  name = options.get('tfds_name', options.name[len('tfds:'):])
  tfds = import_tfds()
  tfds_builder = load_builder(tfds, name, dataset, options.data_dir, options.get('download'))
  info = tfds_builder.info
  image_key, label_key = find_keys(tfds, info, options.get('image_key'),
                                   options.get('label_key'))
  train_split = options.get('train_split', 'train')
  which = read_split(info, name, options.split, train_split, options.get('test_split', 'test'),
                     options.get('validate'), options)

  height, width, stored = info.features[image_key].shape
  if options.get('image_size') is None and None in (height, width):
    first = next(iter(_examples(tfds, tfds_builder, train_split, image_key, label_key).take(1)))
    height, width = tf.io.decode_image(first['encoded'], expand_animations=False).shape[:2]
  depth = options.get('channels') or (3 if (stored or 3) >= 3 else 1)
  names = tuple(info.features[label_key].names)

  examples = _examples(tfds, tfds_builder, which, image_key, label_key)
  num_examples = info.splits[which].num_examples
  source = images.examples(examples, options, (height, width), depth, len(names),
                           num_examples=num_examples, class_names=names)
  logging.info('tfds:%s %s split (%s): %d images, %d classes, %dx%dx%d', name, options.split,
               which, num_examples, len(names), *source.shape)
  return source
