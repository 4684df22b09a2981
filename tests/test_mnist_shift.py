"""The shifted MNIST / MultiMNIST builder: shifts, pairs, shards, determinism, CLI errors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from configs.errors import UserError
from input_data import DataError
from input_data import generate, mnist
from input_data.tools import mnist_shift
from tests import cli
from tests.conftest import write_raw_mnist


def _read(path):
  """{feature: value} of every record: ints as int, bytes as uint8 arrays (flat)."""
  out = []
  for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
    feature = tf.train.Example.FromString(record).features.feature
    out.append({k: (v.int64_list.value[0] if v.WhichOneof('kind') == 'int64_list'
                    else np.frombuffer(v.bytes_list.value[0], np.uint8))
                for k, v in feature.items()})
  return out


def _random_digits(n, size=6, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(1, 256, (n, size, size), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def _shift(image, dy, dx):
  """The reference shift: `image` moved down dy and right dx, zero fill."""
  height, width = image.shape
  out = np.zeros_like(image)
  out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = (
      image[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)])
  return out


def _all_shifts(shift):
  span = range(-shift, shift + 1)
  return [(dy, dx) for dy in span for dx in span]


def test_reference_shift_moves_down_and_right_filling_zeros():
  image = np.arange(1, 10, dtype=np.uint8).reshape(3, 3)
  np.testing.assert_array_equal(_shift(image, 1, -1), [[0, 0, 0], [2, 3, 0], [5, 6, 0]])
  np.testing.assert_array_equal(_shift(image, -2, 2), [[0, 0, 7], [0, 0, 0], [0, 0, 0]])


def test_file_names_follow_the_original_and_mark_validation():
  assert mnist.shifted_name('train', 2) == 'train_2shifted_mnist.tfrecords'
  assert mnist.shifted_name('valid_test', 0) == 'test_0shifted_mnist_valid.tfrecords'
  assert mnist.multi_prefix('valid_train', 6) == 'multitrain_6shifted_mnist_valid.tfrecords'
  assert mnist.shard_names('p', 10)[9] == 'p-00009-of-00010'


def test_shifted_build_writes_every_shift_of_every_padded_image(tmp_path):
  images, labels = _random_digits(3, size=4)
  path = str(tmp_path / 'out.tfrecords')
  assert mnist_shift.build_shifted(images, labels, path, shift=1, pad=1) == 27
  got = _read(path)
  assert len(got) == 27 and set(got[0]) == {'image_raw', 'label', 'height', 'width', 'depth'}
  order = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0), (0, 1), (1, -1), (1, 0), (1, 1)]
  for n, record in enumerate(got):
    i, (dy, dx) = n // 9, order[n % 9]
    expected = _shift(np.pad(images[i], 1), dy, dx)
    assert (record['height'], record['width'], record['depth']) == (6, 6, 1)
    assert record['label'] == labels[i]
    np.testing.assert_array_equal(record['image_raw'], expected.ravel())  # bytes written = read
  assert json.load(open(path + '.json'))['num_records'] == 27


def test_expanded_mnist_for_affnist_is_40x40_with_169_shifts(tmp_path):
  images, labels = _random_digits(1, size=28)
  path = str(tmp_path / 'train_6shifted_mnist.tfrecords')
  assert mnist_shift.build_shifted(images, labels, path, shift=6, pad=6) == 169
  meta = json.load(open(path + '.json'))
  assert (meta['height'], meta['width'], meta['num_records']) == (40, 40, 169)


def _multi(tmp_path, images, labels, name='multi', **kwargs):
  settings = dict(shift=2, pad=1, num_pairs=3, max_shard=7, seed=5)
  settings.update(kwargs)
  return mnist_shift.build_multi(images, labels, str(tmp_path / name), **settings)


def test_multi_build_writes_shards_of_max_shard_records(tmp_path):
  images, labels = _random_digits(20)
  names = _multi(tmp_path, images, labels)
  assert [os.path.basename(n) for n in names] == [f'multi-{i:05d}-of-00009' for i in range(9)]
  counts = [len(_read(n)) for n in names]
  assert counts == [7] * 8 + [4]  # 20 images x 3 pairs = 60 records
  meta = json.load(open(str(tmp_path / 'multi.json')))
  assert meta['num_records'] == 60 and meta['shard_records'] == counts


def test_multi_pairs_differ_in_class_are_shifted_in_bounds_and_merge_saturates(tmp_path):
  images, labels = _random_digits(20)
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
  # Every (image, shift) the builder may use, keyed by its bytes.
  variants = {_shift(padded[i], dy, dx).tobytes(): i
              for i in range(20) for dy, dx in _all_shifts(2)}
  pairs, saturated = [], 0
  for name in _multi(tmp_path, images, labels):
    for r in _read(name):
      assert set(r) == {'label_1', 'label_2', 'image_raw_1', 'image_raw_2', 'merged_raw',
                        'height', 'width', 'depth'}
      assert (r['height'], r['width'], r['depth']) == (8, 8, 1)
      base, partner = variants[r['image_raw_1'].tobytes()], variants[r['image_raw_2'].tobytes()]
      assert (labels[base], labels[partner]) == (r['label_1'], r['label_2'])
      assert r['label_1'] != r['label_2']
      total = r['image_raw_1'].astype(int) + r['image_raw_2']
      np.testing.assert_array_equal(r['merged_raw'], np.minimum(total, 255))
      saturated += int((total > 255).sum())
      pairs.append((base, partner))
  assert saturated > 0
  bases = [b for b, _ in pairs]
  assert sorted(bases) == sorted(list(range(20)) * 3)  # each image is a base num_pairs times
  assert len(set(pairs)) > 50  # partners drawn per pair among the other classes


def _pairs_by_base(tmp_path, images, labels, name, **kwargs):
  """{base image index: [(image_raw_1 bytes, image_raw_2 bytes)]} of a MultiMNIST build."""
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
  owner = {_shift(padded[i], dy, dx).tobytes(): i
           for i in range(len(images)) for dy, dx in _all_shifts(2)}
  pairs = {}
  for path in _multi(tmp_path, images, labels, name, **kwargs):
    for r in _read(path):
      first = r['image_raw_1'].tobytes()
      pairs.setdefault(owner[first], []).append((first, r['image_raw_2'].tobytes()))
  return pairs


def test_base_shift_once_reuses_one_shifted_base_for_all_its_pairs(tmp_path):
  images, labels = _random_digits(20)
  once = _pairs_by_base(tmp_path, images, labels, 'once', base_shift='once')
  per_pair = _pairs_by_base(tmp_path, images, labels, 'per_pair')
  assert sorted(once) == sorted(per_pair) == list(range(20))
  for i in range(20):
    assert len(once[i]) == 3 and len({first for first, _ in once[i]}) == 1  # image_raw_1 equal
    # Only the base's shift differs: the partners, shifted, are the same in both builds.
    assert sorted(s for _, s in once[i]) == sorted(s for _, s in per_pair[i])
  # Re-shifted per pair (25 shifts to draw from), every base of seed 5 shows 2 or 3 shifts.
  assert all(len({first for first, _ in per_pair[i]}) > 1 for i in range(20))
  meta = json.load(open(str(tmp_path / 'once.json')))
  assert meta['base_shift'] == 'once'


def test_base_shift_is_checked_before_reading_any_file(tmp_path):
  with pytest.raises(UserError, match=r"base_shift='twice' is not one of per_pair, once"):
    mnist_shift.build(str(tmp_path), str(tmp_path), 'test', multi_targets=True,
                      base_shift='twice')
  with pytest.raises(UserError, match='--base_shift=once pairs MultiMNIST digits: add '
                     '--multi_targets'):
    mnist_shift.build(str(tmp_path), str(tmp_path), 'test', base_shift='once')


def test_shard_records_are_a_seeded_shuffle_of_every_record_spread_over_the_shards():
  shards = [mnist_shift.shard_records(200, 5, 3, s * 100, (s + 1) * 100) for s in range(10)]
  np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(1000))  # each once
  for records in shards:
    assert np.all(np.diff(records) > 0)  # in stream order
    # Each shard of 100 records gathers 100 images from all over, not a block of images.
    images = records // 5
    assert len(set(images)) == 100 and images.min() < 20 and images.max() > 180
  np.testing.assert_array_equal(shards[3], mnist_shift.shard_records(200, 5, 3, 300, 400))
  assert not np.array_equal(shards[3], mnist_shift.shard_records(200, 5, 4, 300, 400))
  # A short last shard holds part of what a full shard in its place would hold.
  last = mnist_shift.shard_records(200, 5, 3, 950, 1000)
  assert len(last) == 50 and set(last) < set(shards[9])


def _contents(paths):
  return [open(p, 'rb').read() for p in paths]


def test_multi_bytes_depend_on_the_seed_not_on_num_workers(tmp_path):
  images, labels = _random_digits(20)
  one = _multi(tmp_path, images, labels, 'one')
  parallel = _multi(tmp_path, images, labels, 'parallel', num_workers=2)
  other_seed = _multi(tmp_path, images, labels, 'seed6', seed=6)
  assert _contents(one) == _contents(parallel)
  assert _contents(one) != _contents(other_seed)
  assert json.load(open(tmp_path / 'parallel.json')) == json.load(open(tmp_path / 'one.json'))
  assert not any(n.endswith('.partial') for n in os.listdir(tmp_path))


def _pair_stream(images, labels, **settings):
  """The serialized records of generate.py's in-order MultiMNIST stream."""
  dataset, _, _ = generate.examples(images, labels, num_targets=2, endless=False, **settings)
  return [mnist_shift.record(e) for e in dataset.as_numpy_iterator()]


def _records(path):
  return list(tf.data.TFRecordDataset(path).as_numpy_iterator())


def test_multi_records_are_generates_stream_spread_at_random_over_shards(tmp_path):
  images, labels = _random_digits(20)
  settings = dict(shift=2, pad=1, num_pairs=3, seed=5, base_shift='once')
  stream = _pair_stream(images, labels, **settings)
  (whole,) = _multi(tmp_path, images, labels, 'whole', max_shard=60, **settings)
  assert _records(whole) == stream  # one shard: the stream in order, byte for byte
  shards = [_records(n) for n in _multi(tmp_path, images, labels, 'sharded', max_shard=7,
                                        **settings)]
  position = {record: n for n, record in enumerate(stream)}
  assert len(position) == 60 and sorted(sum(shards, []), key=position.get) == stream
  for shard in shards[:-1]:  # in stream order within a shard, drawn from all over it
    ranks = [position[r] for r in shard]
    assert ranks == sorted(ranks) and ranks[-1] - ranks[0] > 20


def test_too_many_pairs_for_a_class_is_a_data_error(tmp_path):
  images, labels = _random_digits(20)  # 18 images of other classes per image
  with pytest.raises(DataError, match='--num_pairs=19 is more than the 18 images'):
    _multi(tmp_path, images, labels, num_pairs=19)


def _cli(*args):
  return cli.run_module('input_data.mnist_shift', *args, timeout=120)


def test_cli_builds_the_file_build_shifted_writes(tmp_path):
  images, labels = _random_digits(12, size=28)
  raw = write_raw_mnist(tmp_path / 'raw', images, labels)
  result = _cli(f'--data_dir={raw}', f'--output_dir={tmp_path}/out', '--split=valid_train',
                '--shift=1')
  assert result.returncode == 0, result.stderr[-2000:]
  expected = str(tmp_path / 'expected.tfrecords')
  # valid_train: images 2..11 (the first 12 / 6 are valid_test).
  mnist_shift.build_shifted(images[2:], labels[2:], expected, shift=1, pad=0)
  built = tmp_path / 'out' / 'train_1shifted_mnist_valid.tfrecords'
  assert built.read_bytes() == open(expected, 'rb').read()


def test_cli_with_missing_raw_files_prints_one_error_line(tmp_path):
  result = _cli(f'--data_dir={tmp_path}/nowhere', '--split=test')
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0])
  assert 't10k-images-idx3-ubyte[.gz]' in errors[0] and 'nowhere' in errors[0]
