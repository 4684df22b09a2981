"""Builds a run's input pipeline from its config (the built-in MNIST subset when no data_dir)."""

from absl import logging

import input_data
from configs.run_config import RunConfig


def make_dataset(config: RunConfig, split: str, batch_size: int, repeat=None):
  """(tf.data.Dataset of batch dicts, DatasetSpec) for `split` ('train' or 'test')."""
  data_dir, generate = config.data_dir, config.generate
  if not data_dir and config.dataset == 'mnist':
    from input_data import mnist  # pylint: disable=g-import-not-at-top
    data_dir, generate = mnist.default_raw_dir(), True
    logging.info('no --data_dir: using the built-in 5,000 real MNIST digits in %s', data_dir)
  elif not data_dir:
    raise input_data.DataError(f'--data_dir is required for --dataset={config.dataset}; '
                               'see README.md "Data" for how to prepare it')
  return input_data.build_dataset(
      config.dataset, data_dir=data_dir, split=split, batch_size=batch_size,
      num_targets=config.num_targets, validate=config.validate, distort=config.distort,
      seed=config.seed, repeat=repeat, generate=generate)
