"""On-the-fly shifted MNIST / MultiMNIST against the file-based builder and reader."""

import numpy as np
import pytest

from configs.errors import UserError
import input_data
from input_data import DataError
from input_data import mnist
from input_data.tools import mnist_shift
from tests.conftest import write_raw_mnist


def _raw(tmp_path, n=20, seed=0):
  """A raw MNIST dir whose train and test files hold the same n random 28x28 digits."""
  rng = np.random.default_rng(seed)
  images = rng.integers(1, 256, (n, 28, 28), dtype=np.uint8)
  labels = (np.arange(n) % 10).astype(np.uint8)
  for source in ('train', 'test'):
    write_raw_mnist(tmp_path, images, labels, source)
  return str(tmp_path), images, labels


def _take(num_batches=None, **kwargs):
  dataset, spec = input_data.build_dataset('mnist', **kwargs)
  dataset = dataset if num_batches is None else dataset.take(num_batches)
  return [{k: v.numpy() for k, v in b.items()} for b in dataset], spec


def _variants(images, pad, shift):
  """{bytes of image i padded and shifted by (dy, dx): (i, dy, dx)} for every allowed shift."""
  margin = pad + shift
  padded = np.pad(images, ((0, 0), (margin, margin), (margin, margin)))
  size = images.shape[1] + 2 * pad
  span = range(-shift, shift + 1)
  return {padded[i, shift - dy:shift - dy + size, shift - dx:shift - dx + size].tobytes():
          (i, dy, dx) for i in range(len(images)) for dy in span for dx in span}


def _u8(x):
  return np.round(x[..., 0] * 255).astype(np.uint8)


def test_unshuffled_generated_mnist_equals_the_files_the_builder_writes(tmp_path):
  raw, images, labels = _raw(tmp_path, n=6)
  mnist_shift.build_shifted(images, labels, str(tmp_path / 'test_1shifted_mnist.tfrecords'),
                            shift=1, pad=0)
  from_files, file_spec = _take(data_dir=str(tmp_path), split='test', batch_size=16, shift=1)
  generated, spec = _take(data_dir=raw, split='test', batch_size=16, shift=1, generate=True)
  assert spec == file_spec and spec.num_examples == 54
  assert len(generated) == len(from_files) == 4  # 16, 16, 16, 6: the partial batch is kept
  for got, want in zip(generated, from_files):
    assert got.keys() == want.keys()
    for key in got:
      assert got[key].dtype == want[key].dtype
      np.testing.assert_array_equal(got[key], want[key])


def test_generated_multimnist_has_the_builders_format_and_semantics(tmp_path):
  raw, images, labels = _raw(tmp_path)
  prefix = str(tmp_path / mnist.multi_prefix('test', 6))
  mnist_shift.build_multi(images, labels, prefix, shift=6, pad=4, num_pairs=3, max_shard=100,
                          seed=0)
  (want,), file_spec = _take(data_dir=str(tmp_path), split='test', batch_size=60, num_targets=2)
  (got,), spec = _take(data_dir=raw, split='test', batch_size=60, num_targets=2, generate=True,
                       num_pairs=3, seed=0)
  assert spec == file_spec
  for key in want:  # one shard: the builder wrote the generator's stream, in order
    assert got[key].dtype == want[key].dtype
    np.testing.assert_array_equal(got[key], want[key])
  assert got['images'].min() >= 0 and got['images'].max() <= 1
  variants = _variants(images, pad=4, shift=6)
  for n in range(60):
    base, _, _ = variants[_u8(got['recons_image'][n]).tobytes()]  # shifted within +-6
    partner, _, _ = variants[_u8(got['spare_image'][n]).tobytes()]
    assert base == n // 3  # unshuffled: pairs follow the images, num_pairs each
    assert got['recons_label'][n] == labels[base] != got['spare_label'][n] == labels[partner]
    total = _u8(got['recons_image'][n]).astype(int) + _u8(got['spare_image'][n])
    np.testing.assert_array_equal(_u8(got['images'][n]), np.minimum(total, 255))
  np.testing.assert_array_equal(got['labels'].sum(axis=1), 2.0)


def test_generated_base_shift_once_gives_all_pairs_of_a_base_one_shifted_base(tmp_path):
  raw, images, labels = _raw(tmp_path)
  common = dict(data_dir=raw, split='test', batch_size=60, num_targets=2, generate=True,
                num_pairs=3, seed=0)
  (once,), _ = _take(base_shift='once', **common)
  (per_pair,), _ = _take(**common)
  variants = _variants(images, pad=4, shift=6)
  for n in range(60):  # the partners and their shifts do not depend on base_shift
    np.testing.assert_array_equal(once['spare_image'][n], per_pair['spare_image'][n])
    assert variants[_u8(once['recons_image'][n]).tobytes()][0] == n // 3
  bases_once = _u8(once['recons_image']).reshape(20, 3, -1)
  bases_per_pair = _u8(per_pair['recons_image']).reshape(20, 3, -1)
  for i in range(20):
    assert len({b.tobytes() for b in bases_once[i]}) == 1  # image_raw_1: one shift per base
  # Re-shifted per pair (169 shifts to draw from): every base of seed 0 shows several.
  assert all(len({b.tobytes() for b in bases_per_pair[i]}) > 1 for i in range(20))


def test_generated_base_shift_once_holds_across_shuffled_draws(tmp_path):
  raw, images, _ = _raw(tmp_path, n=10)
  (batch,), _ = _take(1, data_dir=raw, split='train', batch_size=64, num_targets=2,
                      generate=True, num_pairs=3, seed=2, base_shift='once')
  variants = _variants(images, pad=4, shift=6)
  shifts = {}
  for image in batch['recons_image']:
    i, dy, dx = variants[_u8(image).tobytes()]
    shifts.setdefault(i, set()).add((dy, dx))
  assert len(shifts) == 10 and all(len(s) == 1 for s in shifts.values())  # 64 draws of 10


def test_base_shift_is_refused_where_it_means_nothing(tmp_path):
  raw, _, _ = _raw(tmp_path)
  with pytest.raises(UserError, match='apply with generate=True only'):
    input_data.build_dataset(
        'mnist', data_dir=raw, split='test', batch_size=4, num_targets=2, base_shift='once')
  with pytest.raises(UserError, match="base_shift='once' pairs MultiMNIST digits: it needs "
                     'num_targets=2'):
    input_data.build_dataset(
        'mnist', data_dir=raw, split='test', batch_size=4, generate=True, base_shift='once')
  with pytest.raises(UserError, match="base_shift='per_image' is not one of per_pair, once"):
    input_data.build_dataset(
        'mnist', data_dir=raw, split='test', batch_size=4, num_targets=2, generate=True,
        base_shift='per_image')


def test_generated_training_shifts_stay_in_bounds(tmp_path):
  raw, images, labels = _raw(tmp_path, n=10)
  (batch,), _ = _take(1, data_dir=raw, split='train', batch_size=64, generate=True, seed=1)
  variants = _variants(images, pad=0, shift=2)
  seen = [variants[_u8(image).tobytes()] for image in batch['images']]  # KeyError if out
  assert len({(dy, dx) for _, dy, dx in seen}) > 5 and len({i for i, _, _ in seen}) > 5
  np.testing.assert_array_equal(batch['recons_label'], labels[[i for i, _, _ in seen]])


@pytest.mark.parametrize('num_targets', [1, 2])
def test_generated_streams_are_fixed_by_the_seed(tmp_path, num_targets):
  raw, _, _ = _raw(tmp_path)

  def stream(seed):
    return _take(2, data_dir=raw, split='train', batch_size=8, generate=True,
                 num_targets=num_targets, seed=seed)[0]

  first, again, other = stream(3), stream(3), stream(4)
  for a, b in zip(first, again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert not np.array_equal(first[0]['images'], other[0]['images'])


def test_generated_validation_tests_on_the_first_sixth_of_train(tmp_path):
  raw, images, labels = _raw(tmp_path, n=24)
  batches, spec = _take(data_dir=raw, split='test', batch_size=100, generate=True,
                        validate=True)
  assert spec.num_examples == 4  # images 0..3 of 24, shift 0
  np.testing.assert_array_equal(batches[0]['recons_label'], labels[:4])
  np.testing.assert_array_equal(_u8(batches[0]['images']), images[:4])
  (train,), spec = _take(data_dir=raw, split='train', batch_size=20 * 25, generate=True,
                         validate=True, shuffle=False, repeat=False)
  assert spec.num_examples == 20 * 25  # images 4..23, every shift in [-2, 2]^2
  np.testing.assert_array_equal(train['recons_label'], np.repeat(labels[4:], 25))
  np.testing.assert_array_equal(_u8(train['images'][12::25]), images[4:])  # shift (0, 0)


def test_generate_without_raw_files_names_them(tmp_path):
  with pytest.raises(DataError, match=r't10k-images-idx3-ubyte\[\.gz\]'):
    input_data.build_dataset(
        'mnist', data_dir=str(tmp_path), split='test', batch_size=4, generate=True)


def test_labels_beyond_the_classes_are_refused_by_every_reader_of_raw_files(tmp_path):
  """Raw IDX files with labels 0..22 (EMNIST-like): generated MNIST would one-hot 10..22 as
  zeros; it, the KMNIST declaration and the builder each refuse them naming the file."""
  rng = np.random.default_rng(0)
  for split in ('train', 'test'):
    write_raw_mnist(tmp_path, rng.integers(0, 256, (12, 28, 28), np.uint8),
                    (np.arange(12) * 2).astype(np.uint8), split)
  expected = r't10k-labels-idx1-ubyte\.gz go up to 22; {} has classes 0-9'
  with pytest.raises(DataError, match=expected.format('MNIST')):
    input_data.build_dataset('mnist', data_dir=str(tmp_path), split='test', batch_size=4,
                             generate=True)
  with pytest.raises(DataError, match=expected.format('kmnist')):
    input_data.build_dataset('kmnist', data_dir=str(tmp_path), split='test', batch_size=4)
  with pytest.raises(DataError, match=expected.format('MNIST')):
    mnist_shift.build(str(tmp_path), str(tmp_path / 'out'), 'test', shift=0)
