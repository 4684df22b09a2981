"""smallNORB: binary-matrix conversion (streamed, checked) and the 2017 preprocessing."""

import gzip
import os
import re
import struct

import numpy as np
import pytest
import tensorflow as tf

from configs import RunConfig
import input_data
from input_data import DataError, norb
from input_data.tools import norb as norb_tool
from tests import cli
from tests.conftest import standardize

TRAIN = 'smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat'
TEST = 'smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat'


def _matrix(magic, array, ndim=None):
  """smallNORB binary matrix: magic, ndim, max(ndim, 3) dims (padded with 1), data; int32 LE."""
  ndim = array.ndim if ndim is None else ndim
  dims = list(array.shape) + [1] * (3 - array.ndim)
  return struct.pack(f'<ii{len(dims)}i', magic, ndim, *dims) + array.tobytes()


def _write_raw(raw_dir, name, n, seed=0, gz=False):
  """Official dat/cat/info files for n examples; returns (images [n, 2, 96, 96], labels, info)."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, size=(n, 2, 96, 96), dtype=np.uint8)
  labels = (np.arange(n) % 5).astype('<i4')
  info = rng.integers(0, 9, size=(n, 4)).astype('<i4')
  for kind, data in (('dat', _matrix(0x1E3D4C55, images)), ('cat', _matrix(0x1E3D4C54, labels)),
                     ('info', _matrix(0x1E3D4C54, info))):
    path = os.path.join(raw_dir, name.format(kind))
    if gz:
      with gzip.open(path + '.gz', 'wb') as f:
        f.write(data)
    else:
      with open(path, 'wb') as f:
        f.write(data)
  return images, labels, info


@pytest.fixture
def converted(tmp_path):
  """(test images, labels, info, data_dir): 3 training and 5 test examples converted."""
  raw = tmp_path / 'raw'
  raw.mkdir()
  _write_raw(str(raw), TRAIN, 3, seed=1, gz=True)
  images, labels, info = _write_raw(str(raw), TEST, 5)
  assert norb_tool.convert(str(raw), str(tmp_path)) == {'train': 3, 'test': 5}
  return images, labels, info, str(tmp_path)


def test_converter_writes_the_original_duo_schema_byte_for_byte(converted):
  images, labels, info, data_dir = converted
  records = [tf.train.Example.FromString(r.numpy())
             for r in tf.data.TFRecordDataset(os.path.join(data_dir, 'testduo.tfrecords'))]
  assert len(records) == 5
  for record, image, label, meta in zip(records, images, labels, info):
    feature = record.features.feature
    assert feature['image_raw'].bytes_list.value[0] == image.tobytes()
    assert [feature[k].int64_list.value[0] for k in ('label', 'height', 'width', 'depth')] == [
        label, 96, 96, 2]
    assert list(feature['meta'].int64_list.value) == meta.tolist()


def test_undistorted_reader_keeps_every_other_pixel_of_the_hwc_pair(converted):
  images, labels, _, data_dir = converted
  ds, spec = input_data.build_dataset(
      'norb', data_dir=data_dir, split='test', batch_size=2, distort=False)
  batches = list(ds)
  assert [len(b['images']) for b in batches] == [2, 2, 1]
  got = np.concatenate([b['images'].numpy() for b in batches])
  # TF1 bilinear 96 -> 48 samples source pixel 2i exactly; channels are the two cameras.
  expected = [standardize(x.transpose(1, 2, 0)[::2, ::2].astype(np.float64)) for x in images]
  np.testing.assert_allclose(got, np.stack(expected), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.concatenate([b['recons_label'] for b in batches]), labels)
  assert (spec.height, spec.width, spec.depth, spec.num_classes) == (48, 48, 2, 5)
  assert spec.num_examples == 5


@pytest.mark.parametrize('image_size', [48, 32])
def test_downsampling_equals_the_tf1_bilinear_resize_of_the_2017_code(image_size):
  images = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 2), np.uint8)
  tf1 = tf.compat.v1.image.resize(tf.constant(images, tf.float32), [image_size, image_size],
                                  method=tf.image.ResizeMethod.BILINEAR)
  stored = images.transpose(0, 3, 1, 2).reshape(2, -1)  # camera-major, as in the files
  np.testing.assert_array_equal(norb.downsample(tf.constant(stored), image_size).numpy(),
                                tf1.numpy())


def test_test_split_takes_the_central_32_crop_by_default(converted):
  images, _, _, data_dir = converted
  ds, spec = input_data.build_dataset('norb', data_dir=data_dir, split='test', batch_size=5)
  got = next(iter(ds))['images'].numpy()
  expected = [standardize(x.transpose(1, 2, 0)[::2, ::2][8:40, 8:40].astype(np.float64))
              for x in images]
  np.testing.assert_allclose(got, np.stack(expected), rtol=1e-5, atol=1e-5)
  assert (spec.height, spec.width) == (32, 32)


def test_training_distortions_keep_shape_and_follow_the_seed(converted):
  data_dir = converted[3]

  def first_batch(seed, image_size=48):
    ds, spec = input_data.build_dataset(
        'norb', data_dir=data_dir, split='train', batch_size=4, seed=seed, image_size=image_size)
    return next(iter(ds))['images'].numpy(), spec

  images, spec = first_batch(5)
  assert images.shape == (4, 32, 32, 2) and spec.height == 32 and np.isfinite(images).all()
  np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_array_equal(images, first_batch(5)[0])
  assert not np.array_equal(images, first_batch(6)[0])
  small, spec = first_batch(5, image_size=32)
  assert small.shape == (4, 22, 22, 2) and spec.width == 22


def test_trains_and_evaluates_through_experiment(converted, tmp_path):
  _, labels, _, data_dir = converted
  predictions = cli.train_and_evaluate(
      '--dataset=norb', '--preset=norb', f'--data_dir={data_dir}',
      f'--summary_dir={tmp_path}/run', cli.TINY, '--batch_size=2', '--max_steps=2',
      predictions_out=tmp_path / 'p.npz')
  np.testing.assert_array_equal(predictions['labels'].argmax(1), labels)  # all 5, in order
  assert predictions['logits'].shape == (5, 5)  # five object categories


def test_truncated_or_trailing_raw_files_are_errors_naming_them(tmp_path):
  _write_raw(str(tmp_path), TRAIN, 2)
  dat = tmp_path / TRAIN.format('dat')
  data = dat.read_bytes()
  dat.write_bytes(data[:-10])
  with pytest.raises(DataError, match='training-dat.mat is truncated'):
    norb_tool.convert(str(tmp_path), str(tmp_path / 'out'), splits=('train',))
  assert not (tmp_path / 'out' / 'trainduo.tfrecords').exists()
  assert not (tmp_path / 'out' / 'trainduo.tfrecords.partial').exists()
  dat.write_bytes(data + b'\0')
  with pytest.raises(DataError, match='training-dat.mat: has bytes past the 2 rows'):
    norb_tool.convert(str(tmp_path), str(tmp_path / 'out'), splits=('train',))


def test_truncated_gzip_is_an_error_naming_the_file(tmp_path):
  _write_raw(str(tmp_path), TEST, 2, gz=True)
  cat = tmp_path / (TEST.format('cat') + '.gz')
  cat.write_bytes(cat.read_bytes()[:-12])
  with pytest.raises(DataError, match=r'testing-cat.mat.gz'):
    norb_tool.convert(str(tmp_path), str(tmp_path), splits=('test',))


def test_wrong_element_type_or_magic_is_an_error_naming_the_file(tmp_path):
  _write_raw(str(tmp_path), TEST, 2)
  info = tmp_path / TEST.format('info')
  info.write_bytes(_matrix(0x1E3D4C55, np.zeros((2, 4), np.uint8)))
  with pytest.raises(DataError, match=r'testing-info.mat: holds uint8 \[2, 4\]; expected int32'):
    norb_tool.convert(str(tmp_path), str(tmp_path), splits=('test',))
  info.write_bytes(b'\x00\x01\x02\x03' * 8)
  with pytest.raises(DataError, match=r'testing-info.mat: not a smallNORB matrix'):
    norb_tool.convert(str(tmp_path), str(tmp_path), splits=('test',))


def test_files_that_disagree_on_the_count_are_an_error(tmp_path):
  _write_raw(str(tmp_path), TEST, 2)
  (tmp_path / TEST.format('cat')).write_bytes(_matrix(0x1E3D4C54, np.zeros(3, '<i4')))
  with pytest.raises(DataError, match='2 images, 3 labels, 2 info rows'):
    norb_tool.convert(str(tmp_path), str(tmp_path), splits=('test',))


def test_missing_files_are_named_with_how_to_get_them(tmp_path):
  with pytest.raises(DataError, match=r'testduo.tfrecords.*python -m input_data.norb'):
    input_data.build_dataset('norb', data_dir=str(tmp_path), split='test', batch_size=1)
  with pytest.raises(DataError, match=r'training-dat.mat.*cs.nyu.edu'):
    norb_tool.convert(str(tmp_path), str(tmp_path))


def test_unsupported_options_are_rejected(converted):
  data_dir = converted[3]
  common = dict(data_dir=data_dir, split='test', batch_size=1)
  with pytest.raises(input_data.UserError) as e:
    input_data.build_dataset('norb', validate=True, **common)
  listed = re.fullmatch('--validate applies to --dataset=(.+) only, not norb; drop --validate',
                        str(e.value))
  assert listed and {'affnist', 'cifar10', 'mnist'} <= set(listed[1].split(', '))
  assert 'norb' not in listed[1]
  with pytest.raises(input_data.UserError, match=r'image_size must be one of \[32, 48\]'):
    input_data.build_dataset('norb', **common, image_size=40)
  with pytest.raises(input_data.UserError, match='^--num_targets=2 applies to --dataset=.*'
                     'mnist.* only, not norb; drop --num_targets$'):
    input_data.build_dataset('norb', num_targets=2, **common)
  with pytest.raises(input_data.UserError, match='^--generate applies to --dataset=.*mnist.* '
                     'only, not norb; drop --generate$'):
    input_data.build_dataset('norb', generate=True, **common)
  with pytest.raises(input_data.UserError, match='^--image_size=32 applies to --dataset=.*norb'
                     '.* only, not mnist; drop --image_size$'):
    input_data.build_dataset('mnist', image_size=32, **common)


def test_the_runners_default_options_reach_norb(converted):
  images, _, _, data_dir = converted
  # What runner.inputs passes for `--dataset=norb --distort=false`, other flags unset.
  ds, spec = input_data.build_dataset(
      'norb', data_dir=data_dir, split='test', batch_size=5, seed=None, repeat=None,
      **RunConfig(dataset='norb', distort=False).dataset_options())
  assert (spec.height, spec.num_examples) == (48, 5)  # distort=False reached it: no crop
  got = next(iter(ds))['images'].numpy()
  expected = [standardize(x.transpose(1, 2, 0)[::2, ::2].astype(np.float64)) for x in images]
  np.testing.assert_allclose(got, np.stack(expected), rtol=1e-5, atol=1e-5)


def test_cli_converts_with_its_flags(tmp_path):
  _write_raw(str(tmp_path), TRAIN, 1)
  _write_raw(str(tmp_path), TEST, 1)
  norb_tool.main(['norb', f'--raw_dir={tmp_path}', f'--output_dir={tmp_path / "out"}'])
  assert sorted(os.listdir(tmp_path / 'out')) == ['testduo.tfrecords', 'trainduo.tfrecords']


def test_converter_runs_as_a_script_and_writes_the_same_bytes_in_every_process(tmp_path):
  _write_raw(str(tmp_path), TRAIN, 1)
  _write_raw(str(tmp_path), TEST, 1, gz=True)
  cli.run_module('input_data.norb', f'--raw_dir={tmp_path}', f'--output_dir={tmp_path}',
                 timeout=120, check=True)
  norb_tool.convert(str(tmp_path), str(tmp_path / 'here'))
  for name in ('testduo.tfrecords', 'trainduo.tfrecords'):  # a record's features: fixed order
    assert (tmp_path / name).read_bytes() == (tmp_path / 'here' / name).read_bytes()
