"""Any image classification data as folders of images: DIR/{train,test}/<class>/<image files>
(docs/data_own.md "Folders of images"); input_data/tools/folder.py writes IDX files as such."""

import os
from typing import List, NamedTuple

from absl import logging
import numpy as np
import tensorflow as tf

from input_data import DataError, builder, images
from input_data.pipeline import AUTOTUNE, unconverted

IMAGE_EXTENSIONS = ('.bmp', '.gif', '.jpeg', '.jpg', '.png', '.webp')
LAYOUT = 'DIR/train/<class>/<images> and DIR/test/<class>/<images>'
_SHOWN = 3  # file names quoted in an error


class Listing(NamedTuple):
  """The image files of one split folder, in a fixed order (class, then path)."""
  root: str
  classes: List[str]
  paths: List[str]
  labels: np.ndarray

  def relative(self, index) -> str:
    names = [os.path.relpath(self.paths[i], self.root) for i in index[:_SHOWN]]
    return ', '.join(names) + (', ...' if len(index) > _SHOWN else '')


def is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.')


def list_split(data_dir: str, split: str) -> Listing:
  """The class folders and image files of data_dir/split; DataError for a bad layout."""
  root = os.path.join(data_dir, split)
  if not tf.io.gfile.isdir(root):
    fix = (' or pass validate=True to hold out part of train/' if split == 'test' else '')
    raise DataError(f'no {split}/ folder in {data_dir}: expected {LAYOUT}{fix}')
  classes = sorted(n.rstrip('/') for n in tf.io.gfile.listdir(root)
                   if not n.startswith('.') and tf.io.gfile.isdir(os.path.join(root, n)))
  if len(classes) < 2:
    raise DataError(f'{root} has {len(classes)} class folder(s) ({", ".join(classes)}); a '
                    f'classifier needs at least 2: expected {LAYOUT}')
  paths, labels, skipped = [], [], []
  for label, name in enumerate(classes):
    found = []
    for folder, subdirs, files in tf.io.gfile.walk(os.path.join(root, name)):
      subdirs[:] = [d for d in subdirs if not d.startswith('.')]
      for f in files:
        (found if is_image(f) else skipped).append(os.path.join(folder, f))
    if not found:
      raise DataError(f'class folder {os.path.join(root, name)} has no images '
                      f'({", ".join(IMAGE_EXTENSIONS)}); add some or remove the folder')
    paths += sorted(found)
    labels += [label] * len(found)
  skipped += [os.path.join(root, f) for f in tf.io.gfile.listdir(root)
              if not tf.io.gfile.isdir(os.path.join(root, f))]
  if skipped:
    logging.warning('folder: skipped %d non-image file(s) in %s (e.g. %s); images are %s',
                    len(skipped), root, os.path.relpath(skipped[0], root),
                    ' '.join(IMAGE_EXTENSIONS))
  return Listing(root, classes, paths, np.array(labels, np.int32))


def check_same_classes(train: Listing, test: Listing):
  if train.classes != test.classes:
    only_train = sorted(set(train.classes) - set(test.classes)) or ['-']
    only_test = sorted(set(test.classes) - set(train.classes)) or ['-']
    raise DataError(f'class folders differ between {train.root} and {test.root}: only in '
                    f'train: {", ".join(only_train)}; only in test: {", ".join(only_test)}; '
                    'make them the same (labels are the sorted folder names)')


def hold_out(train: Listing, options) -> Listing:
  """The part of train/ that validate=True trains on (split train) or holds out (split test):
  images.held_out of each class, drawn at random by validation_seed."""
  rng, parts = np.random.default_rng(options.get('validation_seed', 0)), []
  for label, name in enumerate(train.classes):
    members = np.flatnonzero(train.labels == label)
    if len(members) < 2:
      raise DataError(f'class {name} in {train.root} has {len(members)} image; validate=True '
                      'holds out part of each class and needs at least 2')
    count = images.held_out(options, len(members))
    chosen = rng.permutation(members)
    parts.append(chosen[count:] if options.split == 'train' else chosen[:count])
  index = np.sort(np.concatenate(parts))
  return train._replace(paths=[train.paths[i] for i in index], labels=train.labels[index])


def verify_files(listing: Listing, color: bool, detected: bool):
  """DataError naming files that do not decode or, when the depth was `detected` from the first
  train image, that are grayscale among color ones (or the reverse)."""
  def shape(i, path):
    return i, tf.shape(images.stored(tf.io.read_file(path)))

  files = tf.data.Dataset.from_tensor_slices(listing.paths).enumerate()
  shapes = np.zeros([len(listing.paths), 3], np.int32)  # zeros where no image decodes
  for i, s in (files.map(unconverted(shape), num_parallel_calls=AUTOTUNE, deterministic=False)
               .ignore_errors().batch(1024).as_numpy_iterator()):
    shapes[i] = s
  bad = np.flatnonzero(shapes[:, 2] == 0)
  if len(bad):
    raise DataError(f'{len(bad)} of {len(shapes)} files in {listing.root} are not readable '
                    f'images: {listing.relative(bad)}; remove or replace them')
  other = np.flatnonzero((shapes[:, 2] >= 3) != color)
  if detected and len(other):
    kinds = ('grayscale', 'color') if color else ('color', 'grayscale')
    raise DataError(f'mixed channel counts: the first image of train/ is {kinds[1]}, but '
                    f'{len(other)} of {len(shapes)} images in {listing.root} are {kinds[0]} '
                    f'({listing.relative(other)}); pass channels=1 or channels=3 to convert '
                    'every image')
  sizes = np.unique(shapes[:, :2], axis=0)
  if len(sizes) > 1:
    logging.info('folder: images in %s come in %d sizes; each is brought to one by its '
                 'resize_mode', listing.root, len(sizes))


def read(dataset, options) -> builder.Examples:
  """The images in data_dir/{train,test}/<class>/ (see the module docstring)."""
  del dataset  # its facts come from the folders
  data_dir, split = options.data_dir, options.split
  if not tf.io.gfile.isdir(data_dir):
    raise DataError(f'folder data_dir {data_dir} does not exist: expected {LAYOUT}')
  train = list_split(data_dir, 'train')
  if options.get('validate'):
    listing = hold_out(train, options)
  elif split == 'test':
    listing = list_split(data_dir, 'test')
    check_same_classes(train, listing)
  else:
    listing = train

  channels = options.get('channels')
  try:
    height, width, depth = images.stored(tf.io.read_file(train.paths[0])).shape
  except tf.errors.OpError as e:
    raise DataError(f'{train.paths[0]} is not a readable image: '
                    f'{e.message.splitlines()[0]}') from e
  color = depth >= 3 if channels is None else channels == 3
  if options.get('check_files', True):
    verify_files(listing, color, detected=channels is None)

  files = tf.data.Dataset.from_tensor_slices({'path': listing.paths, 'label': listing.labels})
  source = images.examples(files, options, (height, width), 3 if color else 1,
                           len(train.classes), num_examples=len(listing.paths),
                           class_names=tuple(train.classes))
  logging.info('folder: %s split of %s: %d images, %d classes (label name: %s), %dx%dx%d',
               split, data_dir, len(listing.paths), len(train.classes),
               ', '.join(f'{i} {n}' for i, n in enumerate(train.classes)), *source.shape)
  return source


if __name__ == '__main__':  # the tool: input_data/tools/folder.py
  from input_data.tools import cli, folder as tool  # pylint: disable=g-import-not-at-top
  cli.start(tool.main)
