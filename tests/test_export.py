"""--export_dir: a SavedModel that TensorFlow alone loads, in another process and folder, and
that gives the scores --predictions_out writes, from raw uint8 images."""

import numpy as np
import pytest
import tensorflow as tf

from tests import cli


def tfrecord_images(path) -> np.ndarray:
  """The uint8 images [N, H, W, 1] of an MNIST-schema TFRecord file, in order."""
  found = []
  for record in tf.data.TFRecordDataset(str(path)):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    shape = [feature[k].int64_list.value[0] for k in ('height', 'width', 'depth')]
    found.append(np.frombuffer(feature['image_raw'].bytes_list.value[0], np.uint8)
                 .reshape(shape))
  return np.stack(found)


@pytest.fixture(scope='module')
def exported(tiny_run, tiny_data, tmp_path_factory):
  """The tiny capsule run and a one-step baseline, each evaluated into an .npz and exported, and
  the mistakes an export refuses, all in one process; then both exports served elsewhere."""
  out = tmp_path_factory.mktemp('exported')
  (out / 'full').mkdir()
  (out / 'full' / 'keep.txt').write_text('mine')
  (out / 'a_file').write_text('mine')
  data = f'--data_dir={tiny_data}'
  capsule = [data, cli.TINY, '--train=false', f'--checkpoint={tiny_run.dir}/train/model.ckpt-6']
  baseline = [data, '--model=baseline', '--preset=baseline', '--batch_size=8']
  baseline_checkpoint = f'--checkpoint={out}/baseline_run/train/model.ckpt-1'
  cases = cli.run_in_one_process([
      [*capsule, f'--predictions_out={out}/capsule.npz'],
      [*capsule, f'--export_dir={out}/capsule'],
      [*baseline, f'--summary_dir={out}/baseline_run', '--max_steps=1'],
      [*baseline, '--train=false', baseline_checkpoint, f'--predictions_out={out}/baseline.npz'],
      [*baseline, '--train=false', baseline_checkpoint, f'--export_dir={out}/baseline'],
      [*capsule, f'--export_dir={out}/full'],
      [*capsule, f'--export_dir={out}/capsule', '--overwrite'],
      [data, '--model=baseline', '--train=false', f'--checkpoint={tiny_run.dir}/train',
       f'--export_dir={out}/wrong_model'],
      [data, f'--checkpoint={tiny_run.dir}/train', f'--export_dir={out}/training'],
      [*capsule, f'--export_dir={out}/a_file', '--overwrite']])
  for case in cases[:5] + cases[6:7]:
    assert case.returncode == 0, case.stderr[-2000:]
  images = tfrecord_images(tiny_data / 'test_0shifted_mnist.tfrecords')
  served = cli.serve_elsewhere([(out / 'capsule', images), (out / 'baseline', images)], out)
  return out, served, cases[5:6] + cases[7:]


def test_exported_capsule_model_gives_the_evaluation_scores_with_tensorflow_alone(exported):
  out, (served, _), _ = exported
  predictions = np.load(out / 'capsule.npz')
  np.testing.assert_allclose(served['scores'], predictions['logits'], atol=1e-5)
  np.testing.assert_array_equal(served['classes'], predictions['logits'].argmax(1))
  assert served['poses'].shape == (8, 10, 16)
  # The decoder's reconstruction of the predicted class; evaluation's is of the true label.
  right = predictions['logits'].argmax(1) == predictions['labels'].argmax(1)
  np.testing.assert_allclose(served['reconstructions'].reshape(8, -1)[right],
                             predictions['reconstructions'][right, 0], atol=1e-5)
  assert list(served['class_names']) == [str(i).encode() for i in range(10)]
  metadata = served['metadata']
  assert (metadata['step'], metadata['input_shape'], metadata['model']) == (6, [28, 28, 1],
                                                                            'capsule')
  assert metadata['hparams']['conv1_filters'] == 8


def test_exported_baseline_gives_the_evaluation_logits(exported):
  out, (_, served), _ = exported
  np.testing.assert_allclose(served['scores'], np.load(out / 'baseline.npz')['logits'],
                             atol=1e-5)
  assert set(served) == {'scores', 'classes', 'metadata', 'class_names'}
  assert served['metadata']['model'] == 'baseline'


def test_export_refuses_a_full_folder_a_misfit_checkpoint_training_and_a_file(exported):
  out, _, (full, wrong_model, training, a_file) = exported
  for case in (full, wrong_model, training, a_file):
    assert case.returncode == 2 and case.stderr.count('\n') == 1, case.stderr
    assert case.stderr.startswith('error: ') and 'Traceback' not in case.stderr
  assert f'--export_dir={out}/full exists and is not empty; pass --overwrite' in full.stderr
  assert (out / 'full' / 'keep.txt').read_text() == 'mine'
  assert 'were made with --model=capsule (now baseline)' in wrong_model.stderr
  assert not (out / 'wrong_model').exists()
  assert '--export_dir needs --train=false and a single --checkpoint' in training.stderr
  assert f'--export_dir={out}/a_file is a file, not a folder; choose a folder' in a_file.stderr
  assert (out / 'a_file').read_text() == 'mine'
  assert not list(out.glob('*.tmp-*'))
