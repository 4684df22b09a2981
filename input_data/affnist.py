"""affNIST reader: expanded MNIST (40x40) to train, affNIST to test, all read as MNIST's files
(docs/data_other.md "affNIST")."""

import functools

from input_data import augment, builder, mnist
from input_data.datasets import DATASETS
from input_data.pipeline import read_files

IMAGE_SIZE, _, _ = DATASETS['affnist'].shape
NUM_CLASSES = DATASETS['affnist'].num_classes


def read(dataset, options) -> builder.Examples:
  """Expanded MNIST for 'train'; affNIST test (or validation) for 'test'."""
  paths = builder.split_paths(dataset, options)
  parse = functools.partial(mnist.parse_records, num_targets=1, shape=(IMAGE_SIZE, IMAGE_SIZE))
  _, prepare = augment.for_digits(IMAGE_SIZE, IMAGE_SIZE, ())
  return builder.Examples(read_files(paths, parse), prepare, dataset.shape, NUM_CLASSES,
                          builder.epoch_size(paths, options))


if __name__ == '__main__':  # the tool: input_data/tools/affnist.py
  from input_data.tools import cli, affnist as tool  # pylint: disable=g-import-not-at-top
  cli.start(tool.main)
