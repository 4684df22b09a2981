"""affNIST: .mat conversion (pixel order, packagings, errors) and the 40x40 reader."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from configs import RunConfig
import input_data
from input_data import DataError, datasets
from input_data.tools import affnist as affnist_tool
from input_data.tools import records
from tests import cli

scipy_io = pytest.importorskip('scipy.io')


def _images(n, seed=0):
  """Asymmetric uint8 40x40 digits: no image equals its transpose."""
  images = np.random.default_rng(seed).integers(0, 256, size=(n, 40, 40), dtype=np.uint8)
  images[:, 0, 39], images[:, 39, 0] = 255, 0
  return images


def _write_mat(path, images, labels):
  """The official layout: struct affNISTdata, image [1600, N] one image per column."""
  columns = images.reshape(len(images), 1600).T  # each column: an image's rows, in order
  scipy_io.savemat(path, {'affNISTdata': {
      'image': np.ascontiguousarray(columns),
      'label_int': np.asarray(labels, np.uint8).reshape(1, -1),
      'label_one_of_n': np.eye(10, dtype=np.uint8)[labels].T}})


def _records(path):
  return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def _feature(example, name):
  feature = example.features.feature[name]
  return feature.bytes_list.value[0] if name == 'image_raw' else feature.int64_list.value[0]


@pytest.fixture
def converted(tmp_path):
  """(images, labels, data_dir) after converting a 5-image test.mat."""
  images, labels = _images(5), [3, 1, 4, 1, 5]
  _write_mat(str(tmp_path / 'test.mat'), images, labels)
  affnist_tool.convert(str(tmp_path), str(tmp_path / 'data'))
  return images, labels, str(tmp_path / 'data')


def test_converter_reads_each_column_as_a_row_major_image(converted):
  images, labels, data_dir = converted
  records = _records(os.path.join(data_dir, 'test_affnist.tfrecords'))
  assert len(records) == 5
  for record, image, label in zip(records, images, labels):
    assert _feature(record, 'image_raw') == image.tobytes()
    assert [_feature(record, k) for k in ('label', 'height', 'width', 'depth')] == [
        label, 40, 40, 1]


def test_reader_yields_pixels_over_255_and_keeps_the_last_partial_batch(converted):
  images, labels, data_dir = converted
  ds, spec = input_data.build_dataset('affnist', data_dir=data_dir, split='test', batch_size=2)
  batches = list(ds)
  assert [len(b['images']) for b in batches] == [2, 2, 1]
  got = np.concatenate([b['images'].numpy() for b in batches])
  np.testing.assert_array_equal(got[..., 0], images.astype(np.float32) * np.float32(1 / 255))
  assert got[0, 0, 39, 0] == 1.0 and got[0, 39, 0, 0] == 0.0  # top right is set: not transposed
  assert got.dtype == np.float32
  np.testing.assert_array_equal(np.concatenate([b['recons_label'] for b in batches]), labels)
  np.testing.assert_array_equal(np.concatenate([b['labels'] for b in batches]),
                                np.eye(10, dtype=np.float32)[labels])
  assert (spec.height, spec.width, spec.depth, spec.num_classes) == (40, 40, 1, 10)
  assert spec.num_examples == 5


def test_numbered_batch_files_are_read_in_numeric_order(tmp_path):
  os.makedirs(tmp_path / 'test_batches')
  for number in (1, 2, 10):
    _write_mat(str(tmp_path / 'test_batches' / f'{number}.mat'), _images(1, number), [number % 10])
  affnist_tool.convert(str(tmp_path), str(tmp_path))
  records = _records(str(tmp_path / 'test_affnist.tfrecords'))
  assert [_feature(r, 'label') for r in records] == [1, 2, 0]


def test_validate_reads_the_converted_validation_file(tmp_path):
  _write_mat(str(tmp_path / 'test.mat'), _images(2), [0, 0])
  _write_mat(str(tmp_path / 'validation.mat'), _images(3), [7, 7, 7])
  affnist_tool.convert(str(tmp_path), str(tmp_path))
  ds, spec = input_data.build_dataset(
      'affnist', data_dir=str(tmp_path), split='test', batch_size=8, validate=True)
  assert spec.num_examples == 3
  assert next(iter(ds))['recons_label'].numpy().tolist() == [7, 7, 7]


def _write_train_file(data_dir, n):
  train_file = datasets.DATASETS['affnist'].files['train']
  with tf.io.TFRecordWriter(os.path.join(data_dir, train_file)) as writer:
    for i, image in enumerate(_images(n)):
      writer.write(records.image_example(image, i % 10))


def test_training_reads_expanded_mnist_repeats_and_shuffles_per_seed(tmp_path):
  _write_train_file(str(tmp_path), 12)

  def first_labels(seed):
    ds, spec = input_data.build_dataset(
        'affnist', data_dir=str(tmp_path), split='train', batch_size=5, seed=seed)
    assert spec.num_examples is None
    return np.concatenate([b['recons_label'].numpy() for b in ds.take(5)]).tolist()

  labels = first_labels(1)
  assert len(labels) == 25  # repeats past the 12 examples
  assert labels == first_labels(1)
  assert labels != first_labels(2)


def test_trains_and_evaluates_through_experiment(converted, tmp_path):
  images, labels, data_dir = converted
  _write_train_file(data_dir, 12)
  predictions = cli.train_and_evaluate(
      '--dataset=affnist', f'--data_dir={data_dir}', f'--summary_dir={tmp_path}/run', cli.TINY,
      '--batch_size=4', '--max_steps=2', predictions_out=tmp_path / 'p.npz')
  np.testing.assert_array_equal(predictions['labels'].argmax(1), labels)  # all 5, in order
  assert predictions['reconstructions'].shape == (5, 1, 40 * 40)


def test_missing_files_are_named_with_the_command_that_builds_them(tmp_path):
  with pytest.raises(DataError, match='test_affnist.tfrecords.*python -m input_data.affnist'):
    input_data.build_dataset('affnist', data_dir=str(tmp_path), split='test', batch_size=1)
  with pytest.raises(DataError, match=r'train_6shifted_mnist.tfrecords.*--shift=6 --pad=6'):
    input_data.build_dataset('affnist', data_dir=str(tmp_path), split='train', batch_size=1)
  with pytest.raises(DataError, match=r'test.mat.*affNIST'):
    affnist_tool.convert(str(tmp_path), str(tmp_path))


def test_record_of_another_size_is_an_error_naming_the_file(tmp_path):
  path = tmp_path / 'test_affnist.tfrecords'
  with tf.io.TFRecordWriter(str(path)) as writer:
    writer.write(records.image_example(np.zeros((28, 28), np.uint8), 1))
  ds, _ = input_data.build_dataset('affnist', data_dir=str(tmp_path), split='test', batch_size=1)
  with pytest.raises(tf.errors.InvalidArgumentError, match='test_affnist.tfrecords'):
    next(iter(ds))


def test_truncated_record_file_is_an_error_naming_it(converted):
  path = os.path.join(converted[2], 'test_affnist.tfrecords')
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) - 100)
  with pytest.raises(DataError, match='test_affnist.tfrecords is truncated'):
    input_data.build_dataset('affnist', data_dir=converted[2], split='test', batch_size=1)


def test_corrupt_record_is_an_error_naming_the_file(converted):
  path = os.path.join(converted[2], 'test_affnist.tfrecords')
  data = bytearray(open(path, 'rb').read())
  data[len(data) // 2] ^= 0xFF  # inside a record: its checksum no longer matches
  open(path, 'wb').write(bytes(data))
  ds, _ = input_data.build_dataset('affnist', data_dir=converted[2], split='test', batch_size=2)
  with pytest.raises(tf.errors.InvalidArgumentError, match='test_affnist.tfrecords is corrupt'):
    list(ds)


def test_truncated_or_misshapen_mat_file_is_an_error_naming_it(tmp_path):
  _write_mat(str(tmp_path / 'test.mat'), _images(3), [1, 2, 3])
  data = (tmp_path / 'test.mat').read_bytes()
  (tmp_path / 'test.mat').write_bytes(data[:len(data) // 2])
  with pytest.raises(DataError, match='test.mat'):
    affnist_tool.convert(str(tmp_path), str(tmp_path / 'out'))
  assert not (tmp_path / 'out' / 'test_affnist.tfrecords').exists()
  scipy_io.savemat(str(tmp_path / 'test.mat'), {'affNISTdata': {
      'image': np.zeros((784, 2), np.uint8), 'label_int': np.zeros((1, 2), np.uint8)}})
  with pytest.raises(DataError, match=r'test.mat: image is \(784, 2\)'):
    affnist_tool.convert(str(tmp_path), str(tmp_path / 'out'))


def test_options_affnist_lacks_are_refused_by_name(tmp_path):
  common = dict(data_dir=str(tmp_path), split='train', batch_size=1)
  for option, value, flag, takers in [
      ('num_targets', 2, '--num_targets=2', {'mnist'}),
      ('distort', True, '--distort', {'cifar10', 'mnist', 'norb'}),
      ('distort', False, '--distort=false', {'cifar10', 'mnist', 'norb'}),
      ('generate', True, '--generate', {'mnist'})]:
    with pytest.raises(input_data.UserError) as e:
      input_data.build_dataset('affnist', **common, **{option: value})
    # The list names every dataset that takes the option (more may register later).
    listed = re.fullmatch(f'{flag} applies to --dataset=(.+) only, not affnist; '
                          f'drop --{option}', str(e.value))
    assert listed and takers <= set(listed[1].split(', ')) and 'affnist' not in listed[1]


def test_options_at_their_defaults_are_dropped_for_affnist(converted):
  images, _, data_dir = converted
  options = RunConfig(dataset='affnist', validate=False, distort=None, generate=False,
                      num_targets=1).dataset_options()
  assert not options
  ds, spec = input_data.build_dataset(
      'affnist', data_dir=data_dir, split='test', batch_size=8, seed=1, repeat=None, **options)
  assert spec.num_examples == 5
  np.testing.assert_array_equal(next(iter(ds))['images'].numpy()[..., 0],
                                images.astype(np.float32) * np.float32(1 / 255))


def test_cli_converts_with_its_flags(tmp_path):
  _write_mat(str(tmp_path / 'test.mat'), _images(2), [5, 6])
  affnist_tool.main(['affnist', f'--mat_dir={tmp_path}', f'--output_dir={tmp_path / "out"}'])
  assert len(_records(str(tmp_path / 'out' / 'test_affnist.tfrecords'))) == 2
