"""Shared fixtures; keeps TensorFlow quiet and small on the 2-core CI machine."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ORACLE_DIR = pathlib.Path(__file__).parent / 'testdata' / 'a_valid_routing3'


@pytest.fixture(scope='session')
def oracle():
  """The original code's recorded inputs and outputs (see tests/testdata/a_valid_routing3)."""
  return dict(np.load(ORACLE_DIR / 'io.npz'))


def standardize(image):
  """tf.image.per_image_standardization, by hand: the oracle for the CIFAR-10 and NORB tests."""
  return (image - image.mean()) / max(image.std(), 1 / np.sqrt(image.size))


BASELINE_ORACLE_DIR = (pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'oracle'
                       / 'f_baseline')


@pytest.fixture(scope='session')
def baseline_oracle():
  """The original baseline's recorded inputs and outputs (../shared/oracle/f_baseline, 110 MB,
  too large to ship in tests/testdata): required in CI, skipped elsewhere when absent."""
  if not (BASELINE_ORACLE_DIR / 'io.npz').exists():
    if os.environ.get('CI'):
      pytest.fail(f'{BASELINE_ORACLE_DIR} is missing; CI needs shared/ beside the clone')
    pytest.skip(f'{BASELINE_ORACLE_DIR} not present (it lives in the shared/ folder)')
  return dict(np.load(BASELINE_ORACLE_DIR / 'io.npz'))
