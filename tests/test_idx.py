"""IDX files: the exact bytes of the format, round trips, and errors that name the file."""

import gzip

import numpy as np
import pytest

from input_data import DataError
from input_data import idx
from tests.conftest import write_idx, write_raw_mnist


def _digits(n=5, height=3, width=4):
  return np.arange(n * height * width, dtype=np.uint8).reshape(n, height, width)


def test_image_file_is_magic_dims_then_pixels(tmp_path):
  path = str(tmp_path / 'images')
  write_idx(path, _digits(2, 3, 4))
  data = open(path, 'rb').read()
  # 0x00000803: uint8, 3 dims; then 2, 3, 4 as big-endian uint32; then 24 pixels.
  assert data[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
  assert data[16:] == bytes(range(24))


def test_label_file_is_magic_count_then_labels(tmp_path):
  path = str(tmp_path / 'labels')
  write_idx(path, np.array([7, 0, 9], np.uint8))
  assert open(path, 'rb').read() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9])


@pytest.mark.parametrize('name', ['plain-idx3-ubyte', 'zipped-idx3-ubyte.gz'])
def test_images_round_trip_plain_and_gzip(tmp_path, name):
  path = str(tmp_path / name)
  images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
  write_idx(path, images)
  back = idx.read_array(path, 3)
  assert back.dtype == np.uint8 and back.shape == (7, 28, 28)
  np.testing.assert_array_equal(back, images)


def test_gzip_file_holds_the_plain_bytes_and_is_reproducible(tmp_path):
  labels = np.array([1, 2, 3], np.uint8)
  write_idx(str(tmp_path / 'a'), labels)
  write_idx(str(tmp_path / 'a.gz'), labels)
  write_idx(str(tmp_path / 'b.gz'), labels)
  assert gzip.decompress((tmp_path / 'a.gz').read_bytes()) == (tmp_path / 'a').read_bytes()
  assert (tmp_path / 'a.gz').read_bytes() == (tmp_path / 'b.gz').read_bytes()
  np.testing.assert_array_equal(idx.read_array(str(tmp_path / 'a.gz'), 1), labels)


def test_bad_magic_names_the_file(tmp_path):
  path = str(tmp_path / 'labels-as-images')
  write_idx(path, np.array([1, 2], np.uint8))
  with pytest.raises(DataError, match='bad magic number.*labels-as-images'):
    idx.read_array(path, 3)


def test_truncated_file_names_the_file_and_sizes(tmp_path):
  path = tmp_path / 'short-idx3-ubyte'
  write_idx(str(path), _digits(2, 3, 4))
  path.write_bytes(path.read_bytes()[:-5])
  with pytest.raises(DataError, match=r'truncated IDX file .*short-idx3-ubyte.*2x3x4 = 24 bytes'
                                      r'.*found 19'):
    idx.read_array(str(path), 3)


def test_truncated_gzip_names_the_file(tmp_path):
  path = tmp_path / 'cut.gz'
  write_idx(str(path), _digits(50, 28, 28))
  path.write_bytes(path.read_bytes()[:100])
  with pytest.raises(DataError, match='cut.gz'):
    idx.read_array(str(path), 3)


def _raw_dir(tmp_path, num_train=24, num_test=6, gz=False):
  rng = np.random.default_rng(1)
  for source, n in (('train', num_train), ('test', num_test)):
    write_raw_mnist(tmp_path, rng.integers(0, 256, (n, 5, 5), dtype=np.uint8),
                    np.arange(n, dtype=np.uint8) % 10, source, gz=gz)
  return str(tmp_path)


def test_validation_holds_out_the_first_sixth_of_train_as_valid_test(tmp_path):
  raw = _raw_dir(tmp_path, num_train=24)
  train, train_labels = idx.load_split(raw, 'train')
  valid_train, valid_train_labels = idx.load_split(raw, 'valid_train')
  valid_test, valid_test_labels = idx.load_split(raw, 'valid_test')
  assert len(valid_test) == 4 and len(valid_train) == 20  # 24 / 6 held out, from the start
  np.testing.assert_array_equal(valid_test, train[:4])
  np.testing.assert_array_equal(valid_train, train[4:])
  np.testing.assert_array_equal(valid_test_labels, [0, 1, 2, 3])
  np.testing.assert_array_equal(valid_train_labels, train_labels[4:])


def test_validation_cut_is_the_originals_10000_of_60000():
  assert idx.validation_cut(60000) == 10000  # valid_train: images 10,000..59,999
  assert idx.validation_cut(4000) == 666  # the packaged digits: the first 1/6
  assert idx.validation_cut(70000) == 10000  # never more than the original's 10,000


def test_validation_of_fewer_than_six_images_is_refused(tmp_path):
  raw = _raw_dir(tmp_path, num_train=5)
  with pytest.raises(DataError, match='holds 5 images: too few for valid_test'):
    idx.load_split(raw, 'valid_test')


def test_test_split_reads_t10k_files_gzipped(tmp_path):
  raw = _raw_dir(tmp_path, num_test=6, gz=True)
  images, labels = idx.load_split(raw, 'test')
  assert images.shape == (6, 5, 5)
  np.testing.assert_array_equal(labels, [0, 1, 2, 3, 4, 5])


def test_missing_raw_files_are_named_with_where_to_get_them(tmp_path):
  with pytest.raises(DataError) as e:
    idx.load_split(str(tmp_path), 'valid_test')
  message = str(e.value)
  assert 'train-images-idx3-ubyte[.gz]' in message and 'train-labels-idx1-ubyte[.gz]' in message
  assert str(tmp_path) in message and 'python -m input_data.download --dataset=mnist' in message


def test_image_and_label_counts_must_agree(tmp_path):
  raw = _raw_dir(tmp_path, num_test=6)
  write_idx(str(tmp_path / 't10k-labels-idx1-ubyte'), np.zeros(5, np.uint8))
  with pytest.raises(DataError, match='6 images but .*t10k-labels-idx1-ubyte holds 5 labels'):
    idx.load_split(raw, 'test')
