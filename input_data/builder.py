"""One builder for every dataset: declaration and options -> the declared reader's examples
(`read(dataset, options) -> Examples`), ordered, batched and mapped to batch dicts, and a spec."""

import dataclasses
import importlib
import os
from typing import Callable, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from configs.errors import UserError
from configs.spec import DatasetSpec
from input_data import datasets, pipeline


@dataclasses.dataclass(frozen=True)
class Options:
  """A build's resolved options; `get(name, default)` reads the dataset's own ones."""
  name: str
  data_dir: str
  split: str
  batch_size: int
  seed: int
  shuffle: bool
  repeat: bool
  own: dict
  start: int = 0  # examples of the stream already read (a resumed run's step x batch size)
  augment: Tuple[str, ...] = ()  # the training split's distortions (datasets.augmentations)

  @property
  def training(self) -> bool:
    return self.split == 'train'

  def get(self, option: str, default=None):
    value = self.own.get(option)
    return default if value is None else value


@dataclasses.dataclass(frozen=True)
class Examples:
  """What a reader gives the builder: examples {'image': [H, W, D] of 0..255, 'label'} and how
  to prepare batches of them (or, for other keys, its own `to_features`)."""
  examples: tf.data.Dataset
  prepare: Callable  # (images [B, H, W, D], seed [2] or None) -> the model's float32 images
  shape: Tuple[int, int, int]  # of the prepared images
  num_classes: int
  num_examples: Optional[int] = None  # of one epoch; needed for evaluation and a resume
  decode: Optional[Callable] = None  # example -> example, after the order is decided (cheap skip)
  endless: bool = False  # drawn at random by position from options.start on (generated data)
  num_targets: int = 1
  class_names: Tuple[str, ...] = ()
  to_features: Optional[Callable] = None  # (batch of examples, seed or None) -> batch dict

  def features(self, batch, seed=None):
    """The batch dict (input_data/__init__.py) of a batch of examples."""
    if self.to_features:
      return self.to_features(batch, seed)
    images = self.prepare(batch['image'], seed)
    return {'images': images, 'labels': tf.one_hot(batch['label'], self.num_classes),
            'recons_image': images, 'recons_label': batch['label']}


def read(name: str, *, data_dir, split, batch_size, seed=None, repeat=None, shuffle=None,
         start=0, **own) -> Tuple[Options, Examples]:
  """The resolved options and the declared reader's examples of dataset `name`."""
  dataset = datasets.declared(name)
  datasets.check_options(name, own)
  short = name.split(':')[0]
  if split not in ('train', 'test'):
    raise UserError(f"{short}: split must be 'train' or 'test', got {split!r}")
  if batch_size < 1:
    raise UserError(f'{short}: batch_size must be positive, got {batch_size}')
  training = split == 'train'
  seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed
  if start % batch_size:
    raise ValueError(f'start={start} is not a multiple of batch_size={batch_size}')
  options = Options(name, data_dir, split, batch_size, seed,
                    training if shuffle is None else shuffle,
                    training if repeat is None else repeat, own, start,
                    datasets.augmentations(short, own))
  return options, importlib.import_module(f'input_data.{dataset.reader}').read(dataset, options)


def build(name: str, **options) -> Tuple[tf.data.Dataset, DatasetSpec]:
  """The batches and spec of dataset `name` (input_data/datasets.py) for split 'train' or
  'test' (options: read()); shuffle and repeat default to split == 'train'. The stream starts at
  example `start` of its order (pipeline.epochs), a multiple of batch_size."""
  options, source = read(name, **options)
  examples = source.examples
  if not source.endless:
    examples = pipeline.epochs(examples, seed=options.seed, shuffle=options.shuffle,
                               repeat=options.repeat, start=options.start,
                               count=source.num_examples)
  if source.decode:
    examples = examples.map(pipeline.unconverted(source.decode),
                            num_parallel_calls=pipeline.AUTOTUNE)
  augmented = options.training and options.augment  # prepare takes a seed
  batches = pipeline.batches(examples, source.features, batch_size=options.batch_size,
                             drop_remainder=options.repeat,
                             seed=options.seed if augmented else None,
                             first_batch=options.start // options.batch_size)
  return batches, _spec(name, source)


def test_preparation(name: str, **options) -> Tuple[DatasetSpec, Tuple[int, int, int], Callable]:
  """(the test split's spec, shape [H, W, D] of one stored image, uint8 images -> the model's
  images): the test split's preparation, for a SavedModel to serve raw images."""
  _, source = read(name, split='test', batch_size=1, **options)
  examples = source.examples
  stored = (examples.map(pipeline.unconverted(source.decode)) if source.decode else examples
            ).element_spec
  shape = stored['merged' if 'merged' in stored else 'image'].shape
  return _spec(name, source), tuple(shape), lambda images: source.prepare(images, None)


def _spec(name: str, source: Examples) -> DatasetSpec:
  return DatasetSpec(name, *source.shape, source.num_classes, source.num_targets,
                     source.num_examples, source.class_names)


def split_paths(dataset: datasets.Dataset, options: Options, folder: str = '') -> List[str]:
  """The declared files of the split read ('valid_<split>' with validate, where declared) in
  `folder` (default: data_dir); DataError naming any missing one and how to prepare it."""
  files, valid = dataset.files, f'valid_{options.split}'
  names = files[valid] if options.get('validate') and valid in files else files[options.split]
  names = [names] if isinstance(names, str) else names
  return pipeline.require_files([os.path.join(folder or options.data_dir, n) for n in names],
                                dataset.prepare.format(dir=options.data_dir))


def epoch_size(paths, options: Options) -> Optional[int]:
  """Records in TFRecord `paths` where a run needs them (evaluation, a resume), else None."""
  return None if options.training and not options.start else pipeline.count_records(paths)
