"""Folder datasets: written pixels come back, splits, resizing, augmentation, bad folders, IDX."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

import configs
import input_data
from configs.errors import UserError
from input_data import DataError, folder
from input_data.tools import folder as folder_tool
from input_data.datasets import MNIST_IDX
from models import build_model
from tests.conftest import standardize, write_idx

# Created in this order; labels follow the sorted names: ant 0, moose 1, zebra 2.
CLASSES = ('zebra', 'ant', 'moose')
LABEL = {'ant': 0, 'moose': 1, 'zebra': 2}


def pixels(label, i, shape=(6, 6, 1)):
  """A distinct uint8 image per (label, i): values known by construction."""
  size = int(np.prod(shape))
  return ((np.arange(size) * 7 + 60 * label + 17 * i) % 256).astype(np.uint8).reshape(shape)


def write(path, image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  encode = tf.io.encode_jpeg(image, quality=100) if path.endswith('.jpg') else (
      tf.io.encode_png(image))
  tf.io.write_file(str(path), encode)


def make_dir(root, counts=None, shape=(6, 6, 1)):
  """root/{train,test}/<class>/<i>.png with pixels(label, i) (test: i from 100)."""
  counts = counts or {'train': 3, 'test': 2}
  for split, count in counts.items():
    for name in CLASSES:
      for i in range(count):
        first = 100 if split == 'test' else 0
        write(os.path.join(root, split, name, f'{i}.png'), pixels(LABEL[name], first + i, shape))
  return str(root)


@pytest.fixture
def gray_dir(tmp_path):
  return make_dir(tmp_path / 'gray')


def build(data_dir, split='test', batch_size=4, **kwargs):
  return input_data.build_dataset('folder', data_dir=data_dir, split=split,
                                  batch_size=batch_size, **kwargs)


def test_test_split_gives_the_written_pixels_in_order_with_the_last_partial_batch(gray_dir):
  ds, spec = build(gray_dir)
  batches = list(ds)
  assert [len(b['images']) for b in batches] == [4, 2]
  expected = [pixels(label, 100 + i) / 255.0 for label in range(3) for i in range(2)]
  images = np.concatenate([b['images'] for b in batches])
  np.testing.assert_allclose(images, np.stack(expected), atol=1e-6)
  labels = np.concatenate([b['recons_label'] for b in batches])
  np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])
  np.testing.assert_array_equal(np.concatenate([b['labels'] for b in batches]),
                                np.eye(3)[labels])
  first = batches[0]
  assert (first['images'].dtype, first['labels'].dtype, first['recons_label'].dtype) == (
      tf.float32, tf.float32, tf.int32)
  np.testing.assert_array_equal(first['recons_image'], first['images'])
  assert (spec.height, spec.width, spec.depth, spec.num_classes, spec.num_examples) == (
      6, 6, 1, 3, 6)
  assert spec.class_names == ('ant', 'moose', 'zebra')
  assert folder.list_split(gray_dir, 'train').classes == list(spec.class_names)


def test_train_split_is_shuffled_by_the_seed_and_repeats(gray_dir):
  def first_batches(seed):
    ds, spec = build(gray_dir, 'train', seed=seed)
    assert spec.num_examples == 9
    return np.concatenate([b['recons_label'] for b in ds.take(6)])  # 24 of 9: repeats

  labels = first_batches(1)
  assert len(labels) == 24 and np.bincount(labels[:9]).tolist() == [3, 3, 3]
  np.testing.assert_array_equal(labels, first_batches(1))
  assert not np.array_equal(labels, first_batches(2))
  ds, _ = build(gray_dir, 'train', shuffle=False, repeat=False)
  np.testing.assert_array_equal(np.concatenate([b['recons_label'] for b in ds]),
                                [0, 0, 0, 1, 1, 1, 2, 2, 2])


def test_rgb_png_and_jpeg_files_are_read_as_color(tmp_path):
  root = tmp_path / 'rgb'
  for split in ('train', 'test'):
    for name in CLASSES:
      write(str(root / split / name / 'a.png'), pixels(LABEL[name], 0, (5, 7, 3)))
      write(str(root / split / name / 'b.jpg'), np.full((5, 7, 3), 40 * LABEL[name], np.uint8))
  ds, spec = build(str(root), batch_size=6)
  images = next(iter(ds))['images'].numpy()
  assert (spec.height, spec.width, spec.depth) == (5, 7, 3)
  np.testing.assert_allclose(images[0], pixels(0, 0, (5, 7, 3)) / 255.0, atol=1e-6)
  np.testing.assert_allclose(images[3], np.full((5, 7, 3), 40 / 255.0), atol=2 / 255)


def test_channels_option_converts_every_image(gray_dir, tmp_path):
  ds, spec = build(gray_dir, channels=3)
  assert spec.depth == 3
  image = next(iter(ds))['images'].numpy()[0]
  np.testing.assert_allclose(image, np.repeat(pixels(0, 100) / 255.0, 3, axis=2), atol=1e-6)
  rgb = make_dir(tmp_path / 'rgb', shape=(4, 4, 3))
  ds, spec = build(rgb, channels=1)
  r, g, b = np.moveaxis(pixels(0, 100, (4, 4, 3)).astype(np.float64), 2, 0)
  gray = (0.2989 * r + 0.5870 * g + 0.1140 * b) / 255.0  # tf.image.rgb_to_grayscale's weights
  assert spec.depth == 1
  np.testing.assert_allclose(next(iter(ds))['images'].numpy()[0, ..., 0], gray, atol=1e-4)


def test_resize_modes_stretch_fit_or_cover(tmp_path):
  """One 8x4 image per class: a constant one (resize, pad) and one of distinct rows (crop)."""
  constant, rows = np.full((8, 4, 1), 200, np.uint8), (np.arange(8) * 30)[:, None, None]
  rows = np.broadcast_to(rows, (8, 4, 1)).astype(np.uint8)
  for split in ('train', 'test'):
    write(str(tmp_path / split / 'a' / '0.png'), constant)
    write(str(tmp_path / split / 'b' / '0.png'), rows)

  def images(mode):
    ds, spec = build(str(tmp_path), image_size=4, resize_mode=mode)
    assert (spec.height, spec.width) == (4, 4)
    return next(iter(ds))['images'].numpy()[..., 0] * 255

  np.testing.assert_allclose(images('resize')[0], 200, atol=1e-3)
  padded = images('pad')[0]  # 8x4 fits as 4x2: a zero column on each side
  np.testing.assert_allclose(padded[:, [0, 3]], 0, atol=1e-3)
  np.testing.assert_allclose(padded[:, [1, 2]], 200, atol=1e-3)
  np.testing.assert_allclose(images('crop')[1], rows[2:6, :, 0], atol=1e-3)  # central rows


def test_default_size_is_the_first_train_images_and_others_are_resized_to_it(gray_dir):
  write(os.path.join(gray_dir, 'train', 'moose', '9.png'), np.zeros((10, 12, 1), np.uint8))
  write(os.path.join(gray_dir, 'test', 'ant', '9.png'), np.full((12, 12, 1), 90, np.uint8))
  ds, spec = build(gray_dir, batch_size=10)
  assert (spec.height, spec.width, spec.num_examples) == (6, 6, 7)
  np.testing.assert_allclose(next(iter(ds))['images'][2], np.full((6, 6, 1), 90 / 255),
                             atol=1e-5)


def test_validation_holds_out_a_seeded_fraction_of_each_class_of_train(tmp_path):
  data_dir = make_dir(tmp_path, {'train': 5})  # no test/ at all

  def labels_and_ids(split, **kwargs):
    ds, spec = build(data_dir, split, batch_size=20, validate=True, validation_fraction=0.4,
                     repeat=False, shuffle=False, **kwargs)
    batch = next(iter(ds))
    ids = [tuple(x.ravel()[:3]) for x in np.round(batch['images'].numpy() * 255)]
    assert spec.num_examples == len(ids)
    return batch['recons_label'].numpy().tolist(), ids

  test_labels, test_ids = labels_and_ids('test')
  train_labels, train_ids = labels_and_ids('train', seed=7)
  assert test_labels == [0, 0, 1, 1, 2, 2] and train_labels == [0] * 3 + [1] * 3 + [2] * 3
  assert not set(test_ids) & set(train_ids) and len(set(test_ids + train_ids)) == 15
  assert labels_and_ids('test', seed=3)[1] == test_ids  # the run's seed does not move it
  assert labels_and_ids('test', validation_seed=1)[1] != test_ids


def augmented(data_dir, seed, augment='crop,flip', **kwargs):
  ds, spec = build(data_dir, 'train', batch_size=9, seed=seed, augment=augment, **kwargs)
  return next(iter(ds))['images'].numpy(), spec


def test_crop_and_flip_give_padded_windows_of_the_images_and_follow_the_seed(gray_dir):
  images, spec = augmented(gray_dir, 1, crop_padding=2)
  assert images.shape == (9, 6, 6, 1) and (spec.height, spec.width) == (6, 6)
  originals = [np.pad(pixels(label, i) / 255.0, [(2, 2), (2, 2), (0, 0)])
               for label in range(3) for i in range(3)]
  found = set()  # (offset, flipped) of each image's window
  for image in images:
    matches = {((t, s), flip) for v in originals for t in range(5) for s in range(5)
               for flip in (False, True)
               if np.allclose(image, v[t:t + 6, s:s + 6][:, ::-1] if flip else
                              v[t:t + 6, s:s + 6])}
    assert len(matches) == 1
    found |= matches
  assert {flip for _, flip in found} == {False, True} and len({o for o, _ in found}) > 1
  np.testing.assert_array_equal(images, augmented(gray_dir, 1, crop_padding=2)[0])
  assert not np.array_equal(images, augmented(gray_dir, 2, crop_padding=2)[0])
  plain, _ = augmented(gray_dir, 1, augment='')
  assert not np.allclose(images, plain)
  np.testing.assert_array_equal(plain, augmented(gray_dir, 1, distort=False)[0])
  assert augmented(gray_dir, 1, augment='', distort=True)[0].shape == (9, 6, 6, 1)


def test_augmentation_leaves_the_test_split_alone(gray_dir):
  plain, _ = build(gray_dir)
  asked, _ = build(gray_dir, augment='crop,flip', seed=1)
  np.testing.assert_array_equal(next(iter(plain))['images'], next(iter(asked))['images'])


def test_cifar10_augment_crops_to_three_quarters_and_standardizes(tmp_path):
  data_dir = make_dir(tmp_path, shape=(8, 8, 3))
  images, spec = augmented(data_dir, 1, augment='cifar10')
  assert images.shape == (9, 6, 6, 3) and (spec.height, spec.width) == (6, 6)
  np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(images.std(axis=(1, 2, 3)), 1, atol=1e-3)
  ds, spec = build(data_dir, augment='cifar10')
  central = pixels(0, 100, (8, 8, 3))[1:7, 1:7].astype(np.float64)
  assert (spec.height, spec.width) == (6, 6)
  np.testing.assert_allclose(next(iter(ds))['images'][0], standardize(central), atol=1e-4)
  images, spec = augmented(data_dir, 1, augment='cifar10', distort=False, shuffle=False)
  central = pixels(0, 0, (8, 8, 3))[1:7, 1:7].astype(np.float64)  # as the test split
  assert (spec.height, spec.width) == (6, 6)
  np.testing.assert_allclose(images[0], standardize(central), atol=1e-4)


@pytest.mark.parametrize('options, message', [
    (dict(resize_mode='squash'), "resize_mode='squash' is not one of resize, pad, crop"),
    (dict(augment='crop,zoom'), 'unknown augment zoom'),
    (dict(augment='cifar10,flip'), "'cifar10' already crops and flips"),
    (dict(image_size='big'), 'image_size must be N, "HxW" or (H, W)'),
    (dict(channels=2), 'channels=2 is not one of 1, 3'),
    (dict(validate=True, validation_fraction=1.5), 'validation_fraction must be in (0, 1)'),
    (dict(num_targets=2), '--num_targets=2 applies to --dataset='),
])
def test_bad_options_are_one_line_errors(gray_dir, options, message):
  with pytest.raises(UserError) as e:
    build(gray_dir, **options)
  assert message in str(e.value) and '\n' not in str(e.value)


def _no_test(d):
  os.rename(os.path.join(d, 'test'), os.path.join(d, 'elsewhere'))


def _empty_class(d):
  os.makedirs(os.path.join(d, 'train', 'yak'))
  open(os.path.join(d, 'train', 'yak', 'notes.txt'), 'w').close()


def _broken_image(d):
  with open(os.path.join(d, 'test', 'ant', 'bad.png'), 'wb') as f:
    f.write(b'not a png at all')


def _mixed_channels(d):
  write(os.path.join(d, 'test', 'moose', '7.png'), pixels(1, 7, (6, 6, 3)))


@pytest.mark.parametrize('change, message', [
    (lambda d: None, 'folder data_dir {d}/nowhere does not exist'),
    (lambda d: os.rename(os.path.join(d, 'train'), os.path.join(d, 'x')), 'no train/ folder'),
    (_no_test, 'no test/ folder in {d}: expected DIR/train/<class>/<images> and DIR/test/'
     '<class>/<images> or pass validate=True'),
    (lambda d: [os.rename(os.path.join(d, 'train', n), os.path.join(d, n)) for n in CLASSES],
     '{d}/train has 0 class folder(s)'),
    (_empty_class, 'class folder {d}/train/yak has no images (.bmp, .gif'),
    (_broken_image, '1 of 7 files in {d}/test are not readable images: ant/bad.png; remove'),
    (lambda d: os.rename(os.path.join(d, 'test', 'zebra'), os.path.join(d, 'test', 'zzz')),
     'class folders differ between {d}/train and {d}/test: only in train: zebra; only in '
     'test: zzz'),
    (_mixed_channels, 'mixed channel counts: the first image of train/ is grayscale, but 1 of 7 '
     'images in {d}/test are color (moose/7.png); pass channels=1 or channels=3'),
])
def test_bad_folders_are_one_line_data_errors(gray_dir, change, message):
  change(gray_dir)
  data_dir = os.path.join(gray_dir, 'nowhere') if 'nowhere' in message else gray_dir
  with pytest.raises(DataError) as e:
    build(data_dir)
  assert message.format(d=gray_dir) in str(e.value) and '\n' not in str(e.value)


def test_a_class_of_one_image_cannot_be_split_for_validation(tmp_path):
  data_dir = make_dir(tmp_path, {'train': 1})
  with pytest.raises(DataError, match='class ant in .*train has 1 image; validate=True'):
    build(data_dir, validate=True)


def test_mixed_channels_are_converted_when_channels_is_given(gray_dir):
  _mixed_channels(gray_dir)
  ds, spec = build(gray_dir, channels=1, batch_size=10)
  assert spec.depth == 1 and next(iter(ds))['images'].shape == (7, 6, 6, 1)


def test_non_image_files_are_skipped_and_counted_in_the_log(gray_dir, caplog):
  for path in ('test/ant/notes.txt', 'test/.DS_Store', 'test/README'):
    open(os.path.join(gray_dir, path), 'w').close()
  with caplog.at_level(logging.WARNING):
    _, spec = build(gray_dir)
  assert spec.num_examples == 6
  assert f'skipped 3 non-image file(s) in {gray_dir}/test' in caplog.text


def test_idx_files_become_a_folder_of_pngs_that_reads_back(tmp_path, capsys):
  raw = tmp_path / 'raw'
  raw.mkdir()
  rng = np.random.default_rng(0)
  data = {'train': (rng.integers(0, 256, (7, 5, 4), dtype=np.uint8), [2, 0, 1, 2, 0, 1, 1]),
          'test': (rng.integers(0, 256, (3, 5, 4), dtype=np.uint8), [1, 0, 2])}
  for split, (images, labels) in data.items():
    names = MNIST_IDX[split]
    write_idx(str(raw / (names[0] + '.gz')), images)
    write_idx(str(raw / names[1]), np.array(labels, np.uint8))
  out = str(tmp_path / 'folder')
  folder_tool.main(['folder', f'--make_from_idx={raw}', f'--output_dir={out}',
               '--class_names=shoe,bag,coat'])
  assert sorted(os.listdir(os.path.join(out, 'train'))) == ['0_shoe', '1_bag', '2_coat']
  assert sorted(os.listdir(os.path.join(out, 'train', '2_coat'))) == ['0.png', '3.png']
  ds, spec = build(out, batch_size=10)
  batch = next(iter(ds))
  images, labels = data['test']
  np.testing.assert_array_equal(batch['recons_label'], [0, 1, 2])
  np.testing.assert_array_equal(np.round(batch['images'].numpy()[..., 0] * 255),
                                images[[1, 0, 2]])
  assert (spec.height, spec.width, spec.depth, spec.num_examples) == (5, 4, 1, 3)
  with pytest.raises(SystemExit) as e:
    folder_tool.main(['folder', f'--make_from_idx={raw}', f'--output_dir={out}'])
  assert e.value.code == 2 and 'train already exists' in capsys.readouterr().err


def test_capsule_model_builds_from_a_32x32x3_folder_of_100_classes(tmp_path):
  for split in ('train', 'test'):
    for c in range(100):
      write(str(tmp_path / split / f'class{c:03d}' / '0.png'), pixels(c, 0, (32, 32, 3)))
  _, spec = build(str(tmp_path), batch_size=2)
  assert (spec.height, spec.width, spec.depth, spec.num_classes) == (32, 32, 3, 100)
  model = build_model('capsule', configs.make_hparams('mnist'), spec)
  conv1 = 9 * 9 * 3 * 256 + 256
  primary = 9 * 9 * 256 * 256 + 256  # 32 capsule types of 8 atoms
  classes = (32 * 8 * 8) * 8 * 100 * 16 + 100 * 16  # 2048 input capsules of an 8x8 grid
  decoder = 1600 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 3072 + 3072
  assert model.count_params() == conv1 + primary + classes + decoder
