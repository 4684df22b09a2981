"""A user's own image folder through experiment.py: train, resume, evaluate, predict, perturb."""

import csv
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests import cli
from tests.conftest import write_raw_mnist


def write_folder(root, split, per_class, size=24, seed=0):
  """RGB PNGs root/split/<class>/<i>.png; class k's images are brightest in channel k."""
  rng = np.random.default_rng(seed)
  for k, name in enumerate(('cat', 'dog', 'owl')):
    (root / split / name).mkdir(parents=True)
    for i in range(per_class):
      image = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
      image[..., k] += 150
      tf.io.write_file(str(root / split / name / f'{i}.png'), tf.io.encode_png(image))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A 3-class RGB folder, a run trained 2 steps with augmentation, then resumed to 3; then what
  only reads it: checkpoint 3 evaluated with --perturb, checkpoints 2 and 3 (copied to
  members/m0, m1) evaluated alone and as an ensemble, checkpoint 3 evaluated into out/p.npz and
  exported to out/model; training in one process, the rest in another (a TensorFlow start each
  would prove nothing more): (root, flags, first, second, {name: CompletedProcess})."""
  root = tmp_path_factory.mktemp('own')
  data, members, out = root / 'data', root / 'members', root / 'out'
  write_folder(data, 'train', per_class=4)
  write_folder(data, 'test', per_class=3, seed=1)
  common = ['--dataset=folder', f'--data_dir={data}', f'--summary_dir={root / "run"}', cli.TINY,
            '--batch_size=4', '--save_step=2', '--log_every=1', '--seed=2']
  first, second = cli.run_in_one_process([[*common, '--max_steps=2', '--augment=crop,flip'],
                                          [*common, '--max_steps=3', '--augment=crop,flip']],
                                         check=True)
  members.mkdir()
  out.mkdir()
  for i, step in enumerate((2, 3)):
    for suffix in ('.index', '.data-00000-of-00001'):
      shutil.copy(root / 'run' / 'train' / f'model.ckpt-{step}{suffix}', members / f'm{i}{suffix}')
  last = f'--checkpoint={root}/run/train/model.ckpt-3'
  evaluate = [*common, '--train=false']
  cases = {'perturb': [*evaluate, last, f'--predictions_out={root}/perturb.npz', '--perturb'],
           'member0': [*evaluate, f'--checkpoint={members}/m0',
                       f'--predictions_out={members}/member0.npz'],
           'member1': [*evaluate, f'--checkpoint={members}/m1',
                       f'--predictions_out={members}/member1.npz'],
           'ensemble': [*evaluate, f'--checkpoint={members}/m{{}}', '--num_trials=2',
                        f'--predictions_out={members}/ensemble.npz'],
           'evaluate': [*evaluate, last, f'--predictions_out={out}/p.npz'],
           'export': [*evaluate, last, f'--export_dir={out}/model']}
  evaluated = dict(zip(cases, cli.run_in_one_process(cases.values(), check=True)))
  return root, common, first, second, evaluated


def test_folder_run_trains_resumes_and_shows_color_reconstructions(run):
  root, _, first, second, _ = run
  assert 'resumed from' in second.stderr and 'at step 2' in second.stderr
  assert [s for s, _ in cli.scalars(root / 'run' / 'train')['loss/total']] == [1, 2, 3]
  strip = cli.images(root / 'run' / 'train', 'reconstruction')
  assert strip.shape == (24, 24 * 3, 3)  # input | target | reconstruction, in color
  assert strip[..., 0].std() > 0 and not np.array_equal(strip[..., 0], strip[..., 1])
  assert 'total_params:' in first.stderr


def test_folder_evaluation_predicts_every_test_image_and_draws_figure_4(run):
  root, *_, evaluated = run
  done = evaluated['perturb']
  predictions = np.load(root / 'perturb.npz')
  assert predictions['logits'].shape == (9, 3)
  np.testing.assert_array_equal(predictions['labels'].argmax(1), [0, 0, 0, 1, 1, 1, 2, 2, 2])
  assert predictions['reconstructions'].shape == (9, 1, 24 * 24 * 3)
  assert 'Total wrong predictions: ' in done.stdout
  figure = tf.io.decode_png(tf.io.read_file(str(root / 'run' / 'perturbation_0.png')))
  assert figure.shape == (16 * 24, 11 * 24, 3)


def test_folder_ensemble_sums_its_members_logits(run):
  members = run[0] / 'members'  # checkpoints 2 and 3, as m0 and m1
  logits = [np.load(members / f'member{i}.npz')['logits'] for i in range(2)]
  np.testing.assert_allclose(np.load(members / 'ensemble.npz')['logits'], logits[0] + logits[1],
                             rtol=1e-5)


def test_folder_options_are_refused_for_other_datasets(tmp_path):
  done = cli.run('--data_dir=builtin', '--image_size=32', f'--summary_dir={tmp_path}',
                 check=False)
  assert done.returncode == 2
  assert 'image_size' in done.stderr and 'not mnist' in done.stderr


def test_tfds_dataset_prepared_offline_trains_and_evaluates_through_the_cli(tmp_path):
  from tests.test_tfds import tiny_shapes  # pylint: disable=g-import-not-at-top
  tfds = pytest.importorskip('tensorflow_datasets')
  data = tmp_path / 'tfds'
  tiny_shapes(tfds)(data_dir=str(data)).download_and_prepare()
  common = ['--dataset=tfds:tiny_shapes', f'--data_dir={data}', f'--summary_dir={tmp_path}/run',
            cli.TINY, '--batch_size=5', '--image_size=24']
  out = tmp_path / 'p.npz'
  trained, done, missing = cli.run_in_one_process([
      [*common, '--max_steps=2'],
      [*common, '--train=false', f'--checkpoint={tmp_path}/run/train/model.ckpt-2',
       f'--predictions_out={out}'],
      ['--dataset=tfds:mnist', f'--data_dir={tmp_path}/empty', f'--summary_dir={tmp_path}/run2']])
  assert trained.returncode == done.returncode == 0, trained.stderr[-2000:] + done.stderr[-2000:]
  predictions = np.load(out)
  assert predictions['logits'].shape == (4, 3)  # 4 test images of 3 classes
  assert sorted(predictions['labels'].argmax(1)) == sorted(i % 3 for i in range(100, 104))
  assert predictions['reconstructions'].shape == (4, 1, 24 * 24)
  assert 'Total wrong predictions: ' in done.stdout
  assert missing.returncode == 2 and 'tfds build mnist' in missing.stderr


@pytest.fixture(scope='module')
def exported(run):
  """The folder run's last checkpoint evaluated into an .npz and exported (by `run`)."""
  root = run[0]
  out = root / 'out'
  test_files = sorted((root / 'data' / 'test').glob('*/*.png'))  # the evaluation's order
  return out, test_files, np.load(out / 'p.npz')['logits']


def test_exported_folder_model_names_its_classes_and_gives_the_evaluation_scores(exported,
                                                                                 tmp_path):
  out, test_files, logits = exported
  images = np.stack([tf.io.decode_png(tf.io.read_file(str(f))).numpy() for f in test_files])
  served, = cli.serve_elsewhere([(out / 'model', images)], tmp_path)
  np.testing.assert_allclose(served['scores'], logits, atol=1e-5)
  assert list(served['class_names']) == [b'cat', b'dog', b'owl']
  assert served['reconstructions'].shape == (9, 24, 24, 3)
  assert served['metadata']['input_shape'] == [24, 24, 3]


def test_predict_names_each_files_class_and_goes_on_past_a_broken_file(exported, tmp_path):
  out, test_files, logits = exported
  gray = tf.image.rgb_to_grayscale(tf.io.decode_png(tf.io.read_file(str(test_files[0]))))
  (tmp_path / 'big_gray.jpg').write_bytes(
      tf.io.encode_jpeg(tf.image.resize(gray, [48, 36], 'nearest')).numpy())
  (tmp_path / 'broken.png').write_text('not an image')
  csv_path = tmp_path / 'predictions.csv'
  done = cli.run_module('predict', f'--model={out}/model', str(test_files[0].parents[1]) + '/*/*',
                        str(tmp_path / '*.*g'), f'--output={csv_path}', '--batch_size=4')
  assert done.returncode == 1
  assert f'error: {tmp_path}/broken.png is not an image' in done.stderr
  rows = list(csv.reader(csv_path.open()))
  assert rows[0] == ['file', 'class', 'score', 'class_2', 'score_2', 'class_3', 'score_3']
  assert [r[0] for r in rows[1:]] == [str(f) for f in test_files] + [f'{tmp_path}/big_gray.jpg']
  names = np.array(['cat', 'dog', 'owl'])
  for r, scores in zip(rows[1:], logits):
    order = np.argsort(-scores)
    assert r[1::2] == list(names[order])
    np.testing.assert_allclose([float(s) for s in r[2::2]], scores[order], atol=1e-5)
  assert rows[-1][1] in names


def test_predict_refuses_no_file_a_folder_without_a_model_a_file_not_an_image_and_bad_flags(
    exported, tmp_path, capsys):
  out, test_files, _ = exported
  import predict  # pylint: disable=g-import-not-at-top
  for args, message in (([f'--model={out}/model', f'{tmp_path}/*.png'],
                         f'error: {tmp_path}/*.png matches no file\n'),
                        ([f'--model={tmp_path}', str(test_files[0])],
                         f'error: --model={tmp_path} holds no SavedModel; '),
                        ([f'--model={out}/model', f'{out}/p.npz'],
                         f'error: {out}/p.npz: unsupported image format; expected one of .bmp'),
                        ([f'--model={out}/model', str(test_files[0]), f'--output={tmp_path}'],
                         f'error: --output={tmp_path} cannot be written (Is a directory)')):
    with pytest.raises(SystemExit) as exit_status:
      predict.main(args)
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.startswith(message)
  with pytest.raises(SystemExit) as exit_status:
    predict.main([f'--model={out}/model', str(test_files[0]), '--batch_size=0'])
  assert exit_status.value.code == 2
  assert capsys.readouterr().err == ('error: argument --batch_size: must be at least 1, got 0 '
                                     '(python -m predict --help lists the arguments)\n')


def test_a_dataset_declared_in_one_entry_trains_and_evaluates(tmp_path):
  """docs/data_own.md's worked example: KMNIST, declared in input_data/datasets.py alone: trained
  with --distort, evaluated, and exported (the SavedModel crops raw images as the test split)."""
  rng = np.random.default_rng(0)
  test_images = rng.integers(0, 256, (6, 28, 28), np.uint8)
  for split, images in (('train', rng.integers(0, 256, (12, 28, 28), np.uint8)),
                        ('test', test_images)):
    write_raw_mnist(tmp_path / 'kmnist', images, np.arange(len(images), dtype=np.uint8) % 10,
                    split)
  common = ['--dataset=kmnist', f'--data_dir={tmp_path}/kmnist', f'--summary_dir={tmp_path}/run',
            cli.TINY, '--batch_size=4', '--distort']
  out, checkpoint = tmp_path / 'p.npz', f'--checkpoint={tmp_path}/run/train/model.ckpt-2'
  *done, missing = cli.run_in_one_process([
      [*common, '--max_steps=2'],
      [*common, '--train=false', checkpoint, f'--predictions_out={out}'],
      [*common, '--train=false', checkpoint, f'--export_dir={tmp_path}/export'],
      ['--dataset=kmnist', f'--data_dir={tmp_path}/nowhere', f'--summary_dir={tmp_path}/run2']])
  assert [d.returncode for d in done] == [0, 0, 0], '\n'.join(d.stderr[-800:] for d in done)
  predictions = np.load(out)
  assert predictions['logits'].shape == (6, 10)
  np.testing.assert_array_equal(predictions['labels'].argmax(1), np.arange(6))
  served = tf.saved_model.load(str(tmp_path / 'export')).signatures['serving_default'](
      images=tf.constant(test_images[..., None]))
  np.testing.assert_allclose(served['scores'], predictions['logits'], rtol=1e-4, atol=1e-4)
  assert missing.returncode == 2 and 'github.com/rois-codh/kmnist' in missing.stderr
