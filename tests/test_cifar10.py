"""CIFAR-10 binary batches: record decoding, tutorial preprocessing, splits and file errors."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from configs import RunConfig
import input_data
from input_data import DataError, augment, cifar10
from tests import cli
from tests.conftest import standardize


def _images(n, seed=0):
  return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _write_batch(path, images, labels):
  """The official record: 1 label byte, then the image channel-major (CHW)."""
  with open(path, 'wb') as f:
    for image, label in zip(images, labels):
      f.write(bytes([label]) + image.transpose(2, 0, 1).tobytes())


@pytest.fixture
def data_dir(tmp_path):
  """Official layout: data_dir/cifar-10-batches-bin/*.bin, 4 train images per batch, 5 test."""
  folder = tmp_path / 'cifar-10-batches-bin'
  folder.mkdir()
  for i in range(1, 6):
    _write_batch(folder / f'data_batch_{i}.bin', _images(4, i), [i] * 4)
  _write_batch(folder / 'test_batch.bin', _images(5), [0, 1, 2, 3, 9])
  return str(tmp_path)


def test_record_is_decoded_from_channel_major_to_hwc():
  image = np.arange(32 * 32 * 3, dtype=np.int64).reshape(32, 32, 3) % 251
  record = bytes([7]) + image.astype(np.uint8).transpose(2, 0, 1).tobytes()
  decoded = cifar10.decode_records(tf.constant([record]))
  np.testing.assert_array_equal(decoded['image'].numpy()[0], image)
  assert decoded['label'].numpy().tolist() == [7]
  # by hand: pixel (row 1, col 2) green is byte 1 + 1024 * 1 + 32 * 1 + 2 of the record
  assert decoded['image'].numpy()[0, 1, 2, 1] == record[1 + 1024 + 32 + 2]


def test_test_split_is_the_central_crop_standardized_without_dropping_examples(data_dir):
  ds, spec = input_data.build_dataset('cifar10', data_dir=data_dir, split='test', batch_size=2)
  batches = list(ds)
  assert [len(b['images']) for b in batches] == [2, 2, 1]
  images = np.concatenate([b['images'].numpy() for b in batches])
  expected = [standardize(x[4:28, 4:28].astype(np.float64)) for x in _images(5)]
  np.testing.assert_allclose(images, np.stack(expected), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.concatenate([b['recons_label'] for b in batches]),
                                [0, 1, 2, 3, 9])
  assert batches[0]['labels'].dtype == tf.float32
  assert (spec.height, spec.width, spec.depth, spec.num_classes) == (24, 24, 3, 10)
  assert spec.num_examples == 5


def test_test_split_is_never_randomly_distorted(data_dir):
  plain, _ = input_data.build_dataset('cifar10', data_dir=data_dir, split='test', batch_size=5)
  asked, _ = input_data.build_dataset(
      'cifar10', data_dir=data_dir, split='test', batch_size=5, distort=True)
  np.testing.assert_array_equal(next(iter(plain))['images'], next(iter(asked))['images'])


def test_data_dir_may_be_the_batches_folder_itself(data_dir):
  folder = os.path.join(data_dir, 'cifar-10-batches-bin')
  _, spec = input_data.build_dataset('cifar10', data_dir=folder, split='test', batch_size=2)
  assert spec.num_examples == 5


def test_distortions_keep_shape_and_standardize_and_follow_the_seed(data_dir):
  def first_batch(seed, **options):
    ds, spec = input_data.build_dataset(
        'cifar10', data_dir=data_dir, split='train', batch_size=8, seed=seed, **options)
    assert spec.num_examples == 20  # 5 batches of 4: an epoch, for a resume to skip in
    return next(iter(ds))

  batch = first_batch(3)
  images = batch['images'].numpy()
  assert images.shape == (8, 24, 24, 3) and np.isfinite(images).all()
  np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(images.std(axis=(1, 2, 3)), 1, atol=1e-3)
  np.testing.assert_array_equal(images, first_batch(3)['images'].numpy())
  assert not np.array_equal(images, first_batch(4)['images'].numpy())
  listed = first_batch(3, augment='crop,flip,brightness,contrast')['images'].numpy()
  np.testing.assert_array_equal(images, listed)  # the default: --distort's declared list
  flipped = first_batch(3, augment='flip')['images'].numpy()
  assert flipped.shape == images.shape and not np.array_equal(images, flipped)


def test_random_crop_takes_a_window_of_each_image_and_flip_mirrors_it():
  images = tf.constant(_images(6), tf.float32)
  seed = tf.constant([1, 2], tf.int64)
  crops = augment.crop(images, seed, (24, 24)).numpy()
  assert crops.shape == (6, 24, 24, 3)
  for crop, image in zip(crops, images.numpy()):
    windows = [(t, l) for t in range(9) for l in range(9)
               if np.array_equal(image[t:t + 24, l:l + 24], crop)]
    assert len(windows) == 1
  flipped = augment.flip(images, seed).numpy()
  for out, image in zip(flipped, images.numpy()):
    assert np.array_equal(out, image) or np.array_equal(out, image[:, ::-1])


def test_brightness_and_contrast_keep_shape_and_stay_within_their_bounds():
  images = tf.constant(_images(64), tf.float32)
  seed = tf.constant([3, 4], tf.int64)
  shift = (augment.brightness(images, seed) - images).numpy()
  assert shift.shape == (64, 32, 32, 3)
  assert np.all(shift.max(axis=(1, 2, 3)) - shift.min(axis=(1, 2, 3)) < 1e-3)  # one per image
  assert np.all(np.abs(shift) <= 63)
  mean = images.numpy().mean(axis=(1, 2), keepdims=True)
  factor = (augment.contrast(images, seed).numpy() - mean) / (
      images.numpy() - mean + 1e-9)
  assert np.all((factor[:, :4, :4] > 0.2 - 1e-3) & (factor[:, :4, :4] < 1.8 + 1e-3))


def test_validate_holds_out_data_batch_5(data_dir):
  ds, spec = input_data.build_dataset(
      'cifar10', data_dir=data_dir, split='test', batch_size=10, validate=True)
  assert spec.num_examples == 4
  assert next(iter(ds))['recons_label'].numpy().tolist() == [5] * 4
  ds, _ = input_data.build_dataset(
      'cifar10', data_dir=data_dir, split='train', batch_size=16, validate=True, repeat=False,
      shuffle=False, distort=False)
  assert sorted(set(next(iter(ds))['recons_label'].numpy().tolist())) == [1, 2, 3, 4]


def test_trains_and_evaluates_through_experiment(data_dir, tmp_path):
  predictions = cli.train_and_evaluate(
      '--dataset=cifar10', '--preset=cifar10', f'--data_dir={data_dir}',
      f'--summary_dir={tmp_path}/run', cli.TINY, '--batch_size=4', '--max_steps=2',
      predictions_out=tmp_path / 'p.npz')  # the preset's SAME padding, leaky routing
  np.testing.assert_array_equal(predictions['labels'].argmax(1), [0, 1, 2, 3, 9])
  assert predictions['logits'].shape == (5, 10) and 'reconstructions' not in predictions


def test_file_of_partial_records_is_an_error_naming_it(data_dir):
  path = os.path.join(data_dir, 'cifar-10-batches-bin', 'test_batch.bin')
  with open(path, 'ab') as f:
    f.write(b'\0' * 100)
  with pytest.raises(DataError, match='test_batch.bin: 15465 bytes is not a whole number'):
    input_data.build_dataset('cifar10', data_dir=data_dir, split='test', batch_size=2)


def test_label_out_of_range_is_an_error_naming_the_file(tmp_path):
  _write_batch(tmp_path / 'test_batch.bin', _images(1), [12])
  ds, _ = input_data.build_dataset('cifar10', data_dir=str(tmp_path), split='test', batch_size=1)
  with pytest.raises(tf.errors.InvalidArgumentError, match='test_batch.bin'):
    next(iter(ds))


def test_missing_files_are_named_with_the_download_command(tmp_path):
  with pytest.raises(DataError, match=r'data_batch_1.bin.*input_data.download --dataset=cifar10'):
    input_data.build_dataset('cifar10', data_dir=str(tmp_path), split='train', batch_size=1)


def test_generate_and_two_targets_are_refused_naming_the_option(tmp_path):
  common = dict(data_dir=str(tmp_path), split='train', batch_size=1)
  with pytest.raises(input_data.UserError) as e:
    input_data.build_dataset('cifar10', generate=True, **common)
  listed = re.fullmatch('--generate applies to --dataset=(.+) only, not cifar10; drop --generate',
                        str(e.value))
  assert listed and 'mnist' in listed[1].split(', ') and 'cifar10' not in listed[1]
  with pytest.raises(input_data.UserError, match=r'^--num_targets=2 applies to --dataset=.*'
                     'mnist.* only, not cifar10; drop --num_targets$'):
    input_data.build_dataset('cifar10', num_targets=2, **common)
  with pytest.raises(input_data.UserError, match="no dataset takes option 'colour'"):
    input_data.build_dataset('cifar10', colour=True, **common)


def test_the_runners_default_options_reach_cifar10(data_dir):
  # What runner.inputs passes for `--dataset=cifar10 --validate` with every other flag unset.
  ds, spec = input_data.build_dataset(
      'cifar10', data_dir=data_dir, split='test', batch_size=10, seed=None, repeat=None,
      **RunConfig(dataset='cifar10', validate=True).dataset_options())
  assert spec.num_examples == 4  # validate reached the builder: data_batch_5
  assert next(iter(ds))['recons_label'].numpy().tolist() == [5] * 4
