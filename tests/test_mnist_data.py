"""The MNIST / MultiMNIST file readers: batch contract, exact pixels, splits, errors."""

import os

import numpy as np
import pytest
import tensorflow as tf

from configs.spec import DatasetSpec
import input_data
from input_data import DataError, augment
from input_data import datasets
from input_data import idx
from input_data import mnist
from input_data.tools import mnist_shift
from input_data.tools import records
from tests.conftest import write_raw_mnist

FIXTURE = os.path.join(os.path.dirname(__file__), 'testdata', 'a_valid_routing3')


def _write(path, images, labels):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for image, label in zip(images, labels):
      writer.write(records.image_example(image, label))
  return str(path)


def _digits(n, size=28, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n) % 10


def _batches(**kwargs):
  dataset, spec = input_data.build_dataset('mnist', **kwargs)
  return [{k: v.numpy() for k, v in b.items()} for b in dataset], spec


def test_reads_the_original_fixture_as_the_original_reader_did():
  batches, spec = _batches(data_dir=FIXTURE, split='test', batch_size=8)
  expected = np.load(os.path.join(FIXTURE, 'io.npz'))
  (batch,) = batches
  np.testing.assert_array_equal(batch['images'].reshape(8, 784), expected['input_images'])
  np.testing.assert_array_equal(batch['labels'], expected['input_labels'])
  np.testing.assert_array_equal(batch['recons_image'].reshape(8, 784),
                                expected['input_recons_image'])
  np.testing.assert_array_equal(batch['recons_label'], expected['input_recons_label'])
  assert batch['recons_label'].dtype == np.int32 and batch['labels'].dtype == np.float32
  assert spec == DatasetSpec(name='mnist', height=28, width=28, depth=1,
                                        num_classes=10, num_targets=1, num_examples=8)


def test_pixels_are_uint8_times_float32_reciprocal_not_division(tmp_path):
  image = np.arange(28 * 28) % 256  # every value 0..255
  _write(tmp_path / 'test_0shifted_mnist.tfrecords', [image.astype(np.uint8).reshape(28, 28)], [3])
  (batch,), _ = _batches(data_dir=str(tmp_path), split='test', batch_size=1)
  times = image.astype(np.float32) * np.float32(1 / 255)
  np.testing.assert_array_equal(batch['images'].ravel(), times)
  assert not np.array_equal(times, image.astype(np.float32) / np.float32(255))  # they differ


def test_a_single_pass_keeps_the_last_partial_batch_and_endless_training_drops_it(tmp_path):
  images, labels = _digits(10)
  _write(tmp_path / 'test_0shifted_mnist.tfrecords', images, labels)
  _write(tmp_path / 'train_2shifted_mnist.tfrecords', images, labels)
  test, spec = _batches(data_dir=str(tmp_path), split='test', batch_size=4)
  assert [len(b['images']) for b in test] == [4, 4, 2] and spec.num_examples == 10
  np.testing.assert_array_equal(np.concatenate([b['recons_label'] for b in test]), labels)
  train, _ = input_data.build_dataset('mnist', data_dir=str(tmp_path), split='train', batch_size=4)
  assert [len(b['images']) for b in train.take(6)] == [4] * 6


def test_shuffled_training_order_is_fixed_by_the_seed(tmp_path):
  images, labels = _digits(40)
  _write(tmp_path / 'train_2shifted_mnist.tfrecords', images, labels)

  def order(seed):
    batches, _ = _batches(data_dir=str(tmp_path), split='train', batch_size=10, repeat=False,
                          seed=seed)
    return np.concatenate([b['recons_label'] for b in batches])

  assert np.array_equal(order(1), order(1))
  assert sorted(order(1)) == sorted(labels) and not np.array_equal(order(1), labels)
  assert not np.array_equal(order(1), order(2))


def test_validate_reads_the_files_the_builder_writes_for_valid_splits(tmp_path):
  images, labels = _digits(24, size=28)
  raw = write_raw_mnist(tmp_path / 'raw', images, labels.astype(np.uint8), gz=False)
  mnist_shift.build(raw, str(tmp_path), 'valid_test', shift=0)
  batches, spec = _batches(data_dir=str(tmp_path), split='test', batch_size=5, validate=True)
  assert spec.num_examples == 4  # from the builder's sidecar: the first 24 / 6 images
  np.testing.assert_array_equal(batches[0]['recons_label'], labels[:4])
  np.testing.assert_array_equal(_u8(batches[0]['images'][..., 0]), images[:4])


def _u8(x):
  return np.round(x * 255).astype(np.int64)


def _multi_shards(tmp_path, num_images=20):
  images, labels = _digits(num_images, size=28)
  prefix = str(tmp_path / mnist.multi_prefix('test', 6))
  names = mnist_shift.build_multi(images, labels, prefix, shift=6, pad=4, num_pairs=2,
                                  max_shard=15, seed=0)
  return prefix, names


def test_multimnist_batch_is_merged_image_two_hot_labels_and_both_digits(tmp_path):
  prefix, names = _multi_shards(tmp_path)
  batches, spec = _batches(data_dir=f'{prefix}@{len(names)}', split='test', batch_size=16,
                           num_targets=2)
  assert (spec.height, spec.width, spec.num_targets, spec.num_examples) == (36, 36, 2, 40)
  assert [len(b['images']) for b in batches] == [16, 16, 8]
  for b in batches:
    assert b['labels'].sum(axis=1).tolist() == [2.0] * len(b['labels'])
    np.testing.assert_array_equal(b['labels'][np.arange(len(b['labels'])), b['recons_label']], 1)
    np.testing.assert_array_equal(b['labels'][np.arange(len(b['labels'])), b['spare_label']], 1)
    np.testing.assert_array_equal(
        _u8(b['images']), np.minimum(_u8(b['recons_image']) + _u8(b['spare_image']), 255))
  # A directory finds the shards of the default MultiMNIST prefix itself.
  _, spec = input_data.build_dataset(
      'mnist', data_dir=str(tmp_path), split='test', batch_size=16, num_targets=2)
  assert spec.num_examples == 40


def test_missing_file_error_names_the_file_and_the_builder_command(tmp_path):
  with pytest.raises(DataError) as e:
    input_data.build_dataset('mnist', data_dir=str(tmp_path), split='train', batch_size=4)
  assert 'train_2shifted_mnist.tfrecords' in str(e.value)
  assert 'python -m input_data.mnist_shift' in str(e.value) and '--split=train' in str(e.value)


def test_missing_shard_is_named(tmp_path):
  prefix, names = _multi_shards(tmp_path)
  os.remove(names[1])
  with pytest.raises(DataError, match=os.path.basename(names[1])):
    input_data.build_dataset(
        'mnist', data_dir=f'{prefix}@{len(names)}', split='test', batch_size=4, num_targets=2)


def _iterate_error(path, split='test'):
  dataset, _ = input_data.build_dataset(
      'mnist', data_dir=os.path.dirname(path), split=split, batch_size=2, repeat=False)
  with pytest.raises(tf.errors.InvalidArgumentError) as e:
    for _ in dataset:
      pass
  return str(e.value).splitlines()[0]


def test_truncated_file_is_an_error_naming_the_file(tmp_path):
  path = _write(tmp_path / 'train_2shifted_mnist.tfrecords', *_digits(5))
  data = open(path, 'rb').read()
  open(path, 'wb').write(data[:-100])
  assert f'{path} is corrupt or truncated' in _iterate_error(path, split='train')
  test_path = str(tmp_path / 'test_0shifted_mnist.tfrecords')
  os.rename(path, test_path)  # evaluation counts the records first, so it fails at once
  with pytest.raises(DataError, match=f'{test_path} is truncated'):
    input_data.build_dataset('mnist', data_dir=str(tmp_path), split='test', batch_size=2)


def test_corrupt_record_in_the_middle_raises_naming_the_file(tmp_path):
  path = _write(tmp_path / 'test_0shifted_mnist.tfrecords', *_digits(5))
  data = bytearray(open(path, 'rb').read())
  data[len(data) // 2] ^= 0xFF
  open(path, 'wb').write(bytes(data))
  assert f'{path} is corrupt or truncated' in _iterate_error(path)


def test_record_of_another_size_raises_naming_the_file_not_reshaped(tmp_path):
  images, labels = _digits(3)
  path = _write(tmp_path / 'test_0shifted_mnist.tfrecords',
                [images[0], images[1][:27], images[2]], labels)
  message = _iterate_error(path)
  assert f'{path}: a record has height, width, depth [27 28 1], image bytes [756]' in message
  assert 'expected [28, 28, 1], 784 bytes' in message


def test_distortion_crops_to_24_and_keeps_the_pixel_range(tmp_path):
  images, labels = _digits(8)
  _write(tmp_path / 'train_2shifted_mnist.tfrecords', images, labels)
  _write(tmp_path / 'test_0shifted_mnist.tfrecords', images, labels)
  (train,), spec = _batches(data_dir=str(tmp_path), split='train', batch_size=8, repeat=False,
                            shuffle=False, distort=True, seed=0)
  assert (spec.height, spec.width) == (24, 24) and train['images'].shape == (8, 24, 24, 1)
  assert train['images'].min() >= 0 and train['images'].max() <= 1
  np.testing.assert_array_equal(train['images'], train['recons_image'])
  (test,), _ = _batches(data_dir=str(tmp_path), split='test', batch_size=8, distort=True)
  np.testing.assert_array_equal(test['images'][..., 0],
                                images[:, 2:26, 2:26] * np.float32(1 / 255))
  again, _ = _batches(data_dir=str(tmp_path), split='train', batch_size=8, repeat=False,
                      shuffle=False, distort=True, seed=0)
  np.testing.assert_array_equal(again[0]['images'], train['images'])  # seeded crops and angles


def test_augment_picks_from_one_vocabulary_and_distort_is_the_declared_list(tmp_path):
  images, labels = _digits(8)
  _write(tmp_path / 'train_2shifted_mnist.tfrecords', images, labels)
  _write(tmp_path / 'test_0shifted_mnist.tfrecords', images, labels)

  def first(split='train', **options):
    (batch,), spec = _batches(data_dir=str(tmp_path), split=split, batch_size=8, repeat=False,
                              shuffle=False, seed=3, **options)
    return batch['images'], spec

  plain, spec = first()
  np.testing.assert_array_equal(plain[..., 0], images * np.float32(1 / 255))
  rotated, spec = first(augment='rotate')
  assert rotated.shape == (8, 28, 28, 1) and spec.height == 28
  assert not np.array_equal(rotated, plain)
  assert set(np.unique(rotated)) <= set(np.unique(plain)) | {0.0}  # nearest pixel, zero fill
  np.testing.assert_array_equal(first(distort=True)[0], first(augment='crop,rotate')[0])
  assert first(augment='crop')[1].height == 24
  assert not np.array_equal(first(augment='rotate,crop')[0], first(augment='crop,rotate')[0])
  np.testing.assert_array_equal(first(augment='rotate', distort=False)[0], plain)
  test, spec = first('test', augment='crop')  # the test split: the central window, no draw
  np.testing.assert_array_equal(test[..., 0], images[:, 2:26, 2:26] * np.float32(1 / 255))
  assert tuple(augment.DISTORTIONS) == datasets.AUGMENTATIONS
  with pytest.raises(input_data.UserError, match='distortion applies to single-digit'):
    input_data.build_dataset('mnist', data_dir=FIXTURE, split='test', batch_size=4,
                             num_targets=2, augment='flip')


def test_rotation_by_a_quarter_turn_moves_bottom_to_right_per_image():
  images = np.zeros((2, 3, 3, 1), np.float32)
  images[:, 2, 1] = 1.0
  rotated = augment.rotate(tf.constant(images), None,
                           angles=tf.constant([np.pi / 2, 0.0], tf.float32)).numpy()
  expected = np.zeros((3, 3, 1), np.float32)
  expected[1, 2] = 1.0
  np.testing.assert_array_equal(rotated[0], expected)
  np.testing.assert_array_equal(rotated[1], images[1])  # angle 0: unchanged


def test_mnist_is_declared_under_its_name():
  assert datasets.declared('mnist').reader == 'mnist'
  assert datasets.declared('tfds:cifar100') is datasets.DATASETS['tfds']


def test_default_raw_dir_holds_the_packaged_5k_digits():
  images, labels = idx.load_split(mnist.default_raw_dir(), 'train')
  test_images, test_labels = idx.load_split(mnist.default_raw_dir(), 'test')
  assert images.shape == (4000, 28, 28) and test_images.shape == (1000, 28, 28)
  assert np.bincount(labels).tolist() == [400] * 10
  assert np.bincount(test_labels).tolist() == [100] * 10


def test_bad_arguments_are_user_errors():
  with pytest.raises(input_data.UserError, match="split must be 'train' or 'test'"):
    input_data.build_dataset('mnist', data_dir=FIXTURE, split='valid', batch_size=4)
  with pytest.raises(input_data.UserError, match='distortion applies to single-digit'):
    input_data.build_dataset(
        'mnist', data_dir=FIXTURE, split='test', batch_size=4, num_targets=2, distort=True)
  with pytest.raises(input_data.UserError, match='apply with generate=True only'):
    input_data.build_dataset('mnist', data_dir=FIXTURE, split='test', batch_size=4, num_pairs=5)
