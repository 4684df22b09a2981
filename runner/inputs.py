"""Builds a run's input pipeline from its config (--data_dir=builtin: the packaged digits), and
tells the errors of reading its files from the others."""

import contextlib

import tensorflow as tf
from absl import logging

import input_data
from configs.errors import first_line
from configs.run_config import BUILTIN_DATA, RunConfig


def make_dataset(config: RunConfig, split: str, batch_size: int, repeat=None, start: int = 0):
  """(tf.data.Dataset of batch dicts, DatasetSpec) for `split` ('train' or 'test'), from
  example `start` of its stream (input_data/pipeline.epochs)."""
  return input_data.build_dataset(config.dataset, split=split, batch_size=batch_size,
                                  seed=config.seed, repeat=repeat, start=start,
                                  **_data_options(config))


def test_preparation(config: RunConfig):
  """(spec, shape of one stored image, stored uint8 images -> the model's images) of the test
  split: what a SavedModel serves."""
  return input_data.test_preparation(config.dataset, seed=config.seed, **_data_options(config))


def _data_options(config: RunConfig) -> dict:
  """data_dir and the dataset's options (--data_dir=builtin: the packaged digits, generated)."""
  data_dir, options = config.data_dir, config.dataset_options()
  if data_dir == BUILTIN_DATA:
    from input_data import mnist  # pylint: disable=g-import-not-at-top
    data_dir, options = mnist.default_raw_dir(), dict(options, generate=True)
    logging.info('--data_dir=%s: the packaged 5,000 real MNIST digits (4,000 train, 1,000 '
                 'test) in %s, for a first look, not for the paper\'s results', BUILTIN_DATA,
                 data_dir)
  return dict(options, data_dir=data_dir)


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
