"""Builds a run's input pipeline from its config (--data_dir=builtin: the packaged digits), and
tells the errors of reading its files from the others."""

import contextlib

import tensorflow as tf
from absl import logging

import input_data
from configs.errors import first_line
from configs.run_config import BUILTIN_DATA, RunConfig

# How to prepare each dataset's files, for the error when --data_dir is missing.
_PREPARE = {
    'mnist': ('python -m input_data.download --dataset=mnist --output_dir=data/mnist_raw, then '
              'python -m input_data.mnist_shift --data_dir=data/mnist_raw --output_dir=data/mnist '
              '--split=train --shift=2 (and --split=test --shift=0), and pass '
              '--data_dir=data/mnist'),
    'cifar10': 'python -m input_data.download --dataset=cifar10 --output_dir=data/cifar10',
}


# Settings that only image datasets (folder, tfds:NAME) take: passed only when set, so that
# any other dataset refuses them by name (input_data.build_dataset).
_IMAGE_OPTIONS = ('image_size', 'resize_mode', 'channels', 'augment', 'download')
_DEFAULTS = {f.name: f.default for f in RunConfig.flag_fields()}


def make_dataset(config: RunConfig, split: str, batch_size: int, repeat=None):
  """(tf.data.Dataset of batch dicts, DatasetSpec) for `split` ('train' or 'test')."""
  data_dir, generate = config.data_dir, config.generate
  if data_dir == BUILTIN_DATA:
    from input_data import mnist  # pylint: disable=g-import-not-at-top
    data_dir, generate = mnist.default_raw_dir(), True
    logging.info('--data_dir=%s: the packaged 5,000 real MNIST digits (4,000 train, 1,000 '
                 'test) in %s, for a first look, not for the paper\'s results', BUILTIN_DATA,
                 data_dir)
  elif not data_dir:
    how = _PREPARE.get(config.dataset, 'see README.md "Data" for how to prepare it')
    builtin = f', or --data_dir={BUILTIN_DATA} for 5,000 packaged digits' * (
        config.dataset == 'mnist')
    raise input_data.DataError(f'--data_dir is required for --dataset={config.dataset}: '
                               f'{how}{builtin}')
  image_options = {name: getattr(config, name) for name in _IMAGE_OPTIONS
                   if getattr(config, name) != _DEFAULTS[name]}
  return input_data.build_dataset(
      config.dataset, data_dir=data_dir, split=split, batch_size=batch_size,
      num_targets=config.num_targets, validate=config.validate, distort=config.distort,
      seed=config.seed, repeat=repeat, generate=generate, **image_options)


# What reading bad files raises: a corrupt or truncated record (the pipeline's own checks are
# assertions), an image that does not decode, a file gone or unreadable.
_READ_ERRORS = (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
                tf.errors.PermissionDeniedError)


@contextlib.contextmanager
def reading_data(config: RunConfig):
  """Turns an error of the input pipeline (its ops run under the iterator's IteratorGetNext, in
  a tf.function too) into one DataError; any other error is a bug and propagates."""
  try:
    yield
  except _READ_ERRORS as e:
    if 'IteratorGetNext' not in str(e):
      raise
    raise input_data.DataError(f'cannot read the data in --data_dir={config.data_dir}: '
                               f'{first_line(e)}') from e


def read_batches(dataset, config: RunConfig):
  """The batches of `dataset`, read under reading_data (the loop's body is not)."""
  with reading_data(config):
    yield from dataset
