"""TFDS datasets: a tiny dataset prepared offline in the test, read through 'tfds:NAME'."""

import sys
import types

import numpy as np
import pytest

import input_data
from configs.errors import UserError
from input_data import DataError, tfds_data

NAMES = ['circle', 'square', 'triangle']


def pixels(index):
  """Example `index`'s 6x6 grayscale image: its first pixel is the index (< 256)."""
  return ((np.arange(36) * 3 + index) % 256).astype(np.uint8).reshape(6, 6, 1)


@pytest.fixture(scope='module')
def tfds():
  """tensorflow_datasets, imported only when these tests run (it defines absl flags)."""
  return pytest.importorskip('tensorflow_datasets')


def tiny_shapes(tfds):
  """A builder class of 10 train and 4 test images, label = index % 3, and a second, coarse
  ClassLabel; unregistered, so tfds.builder finds it on disk only, as a user's prepared data."""
  with tfds.core.registered.skip_registration():

    class TinyShapes(tfds.core.GeneratorBasedBuilder):
      VERSION = tfds.core.Version('1.0.0')

      def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                'image': tfds.features.Image(shape=(6, 6, 1)),
                'label': tfds.features.ClassLabel(names=NAMES),
                'coarse': tfds.features.ClassLabel(names=['round', 'angular']),
            }), supervised_keys=('image', 'label'))

      def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {'train': self._generate_examples(range(10)),
                'test': self._generate_examples(range(100, 104))}

      def _generate_examples(self, indices):  # pylint: disable=arguments-differ
        for i in indices:
          yield i, {'image': pixels(i), 'label': i % 3, 'coarse': int(i % 3 > 0)}

  return TinyShapes


@pytest.fixture(scope='module')
def data_dir(tfds, tmp_path_factory):
  path = str(tmp_path_factory.mktemp('tfds'))
  tiny_shapes(tfds)(data_dir=path).download_and_prepare()
  return path


def build(data_dir, split='test', batch_size=3, **kwargs):
  return input_data.build_dataset('tfds:tiny_shapes', data_dir=data_dir, split=split,
                                  batch_size=batch_size, **kwargs)


def index_of(image):
  """The example index an image in [0, 1] was made from (pixels() inverted)."""
  return int(round(image.ravel()[0] * 255))


def test_test_split_reads_the_prepared_images_in_a_fixed_order(data_dir):
  ds, spec = build(data_dir)
  batches = list(ds)
  assert [len(b['images']) for b in batches] == [3, 1]
  images = np.concatenate([b['images'] for b in batches])
  labels = np.concatenate([b['recons_label'] for b in batches])
  indices = [index_of(x) for x in images]
  assert sorted(indices) == list(range(100, 104))
  for image, label, i in zip(images, labels, indices):
    np.testing.assert_allclose(image, pixels(i) / 255.0, atol=1e-6)
    assert label == i % 3
  np.testing.assert_array_equal(np.concatenate([b['labels'] for b in batches]),
                                np.eye(3)[labels])
  again = np.concatenate([b['recons_label'] for b in build(data_dir)[0]])
  np.testing.assert_array_equal(labels, again)
  assert (spec.name, spec.height, spec.width, spec.depth, spec.num_classes,
          spec.num_examples) == ('tfds:tiny_shapes', 6, 6, 1, 3, 4)
  assert spec.class_names == tuple(NAMES)


def test_train_split_is_shuffled_by_the_seed_repeats_and_augments(data_dir):
  def first_batches(seed, **kwargs):
    ds, spec = build(data_dir, 'train', batch_size=4, seed=seed, **kwargs)
    assert spec.num_examples == 10
    return np.concatenate([b['images'] for b in ds.take(5)])  # 20 of 10: repeats

  images = first_batches(1)
  assert sorted(index_of(x) for x in images[:10]) == list(range(10))
  np.testing.assert_array_equal(images, first_batches(1))
  assert not np.array_equal(images, first_batches(2))
  flipped = first_batches(1, augment='flip')
  assert flipped.shape == (20, 6, 6, 1) and not np.array_equal(flipped, images)
  np.testing.assert_array_equal(flipped, first_batches(1, augment='flip'))


def test_validation_holds_out_the_tail_of_train(data_dir):
  def indices(split):
    ds, spec = build(data_dir, split, batch_size=20, validate=True, validation_fraction=0.2,
                     repeat=False, shuffle=False)
    found = [index_of(x) for x in next(iter(ds))['images'].numpy()]
    assert spec.num_examples == len(found)
    return found

  held, kept = indices('test'), indices('train')
  assert len(held) == 2 and len(kept) == 8 and sorted(held + kept) == list(range(10))


def test_size_channels_and_label_key_options(data_dir):
  ds, spec = build(data_dir, image_size=4, channels=3, label_key='coarse')
  batch = next(iter(ds))
  assert batch['images'].shape == (3, 4, 4, 3) and batch['labels'].shape == (3, 2)
  assert (spec.height, spec.width, spec.depth, spec.num_classes) == (4, 4, 3, 2)
  assert spec.class_names == ('round', 'angular')


def test_keys_are_read_from_the_features_or_refused_with_the_candidates(tfds, data_dir):
  info = tfds.builder('tiny_shapes', data_dir=data_dir).info
  assert tfds_data.find_keys(tfds, info, None, None) == ('image', 'label')
  unsupervised = types.SimpleNamespace(features=info.features, supervised_keys=None,
                                       name='tiny_shapes')
  with pytest.raises(DataError, match=r"cannot tell the label feature \(ClassLabel features: "
                     r"coarse, label\); pass label_key=one of them"):
    tfds_data.find_keys(tfds, unsupervised, None, None)
  with pytest.raises(DataError, match="'picture' is not the image feature"):
    build(data_dir, image_key='picture')


def test_a_missing_split_names_the_splits_there_are(data_dir):
  with pytest.raises(DataError, match=r"has no split 'validation' \(it has: train, test\); pass "
                     r'test_split=one of them or pass validate=True'):
    build(data_dir, test_split='validation')


def test_a_dataset_not_prepared_says_how_to_prepare_it_without_downloading(tfds, tmp_path):
  with pytest.raises(DataError) as e:
    input_data.build_dataset('tfds:fashion_mnist', data_dir=str(tmp_path), split='train',
                             batch_size=4)
  assert str(e.value) == (f'tfds:fashion_mnist is not prepared in {tmp_path}; prepare it '
                          f'(downloads) with: tfds build fashion_mnist --data_dir={tmp_path}, '
                          'or pass download=True')
  assert not list(tmp_path.iterdir())  # nothing fetched or written


def test_download_true_prepares_a_registered_dataset_first(tfds, tmp_path):
  class TinyOnDemand(tiny_shapes(tfds)):  # registered: TFDS knows how to prepare it
    pass

  kwargs = dict(data_dir=str(tmp_path), split='test', batch_size=4)
  with pytest.raises(DataError, match='tfds:tiny_on_demand is not prepared in'):
    input_data.build_dataset('tfds:tiny_on_demand', **kwargs)
  ds, spec = input_data.build_dataset('tfds:tiny_on_demand', download=True, **kwargs)
  assert spec.num_examples == 4 and len(next(iter(ds))['images']) == 4
  assert TinyOnDemand.name == 'tiny_on_demand'


def test_an_unknown_name_is_one_line(tfds, tmp_path):
  with pytest.raises(DataError) as e:
    input_data.build_dataset('tfds:no_such_data', data_dir=str(tmp_path), split='test',
                             batch_size=4)
  assert 'tfds:no_such_data is neither a TFDS dataset nor prepared in' in str(e.value)
  assert '\n' not in str(e.value)


def test_without_tensorflow_datasets_the_error_says_what_to_install(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)  # import fails
  with pytest.raises(UserError, match=r"tfds:NAME datasets need tensorflow-datasets: "
                     r"pip install -e '\.\[tfds\]'"):
    build(str(tmp_path))
