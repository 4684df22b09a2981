"""What the original code did that researchers compare against, through the real entry points."""

import numpy as np
import pytest
import tensorflow as tf

import input_data
from configs import RunConfig, make_hparams
from configs.spec import DatasetSpec
from models import build_model
from runner import checkpoints
from tests import cli
from tests.conftest import BASELINE_ORACLE_DIR, ORACLE_DIR
from tests.test_tf1_import import ORACLE_OVERRIDES, variables_by_original_name

MNIST = DatasetSpec('mnist', 28, 28, 1, 10)


def tf1_adam_step(value, grad, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8):
  """The first update of TF1's AdamOptimizer (what the original trains with), in numpy."""
  m, v = (1 - beta1) * grad, (1 - beta2) * grad ** 2
  rate = learning_rate * np.sqrt(1 - beta2) / (1 - beta1)
  return value - rate * m / (np.sqrt(v) + epsilon)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """experiment.py's runs of this file, one after another in one process (a TensorFlow start
  each would prove nothing more; the first runs as in a fresh process): (folder, {name:
  CompletedProcess}). `adam_step`: one step from the original checkpoint on the oracle's 8
  records; `baseline`: the original baseline checkpoint evaluated; `tiny`, `other_routing`,
  `other_shape`: the tiny model trained a step, then evaluated with routing=1 and leaky, and
  with prime_atoms=4."""
  root = tmp_path_factory.mktemp('fidelity')
  data_dir = cli.tiny_mnist_dir(root / 'data')
  common = [f'--data_dir={data_dir}', f'--summary_dir={root}/tiny', '--batch_size=8']
  checkpoint = f'--checkpoint={root}/tiny/train/model.ckpt-1'
  cases = {
      'adam_step': ['--notf32', f'--checkpoint={ORACLE_DIR}/model.ckpt-0',
                    f'--data_dir={data_dir}', f'--summary_dir={root}/adam_step',
                    f'--hparams_override={ORACLE_OVERRIDES}', '--batch_size=8', '--max_steps=1',
                    '--seed=1'],
      'baseline': ['--model=baseline', '--preset=baseline', '--train=false', '--notf32',
                   f'--checkpoint={BASELINE_ORACLE_DIR}/model.ckpt-0',
                   f'--data_dir={BASELINE_ORACLE_DIR}', f'--predictions_out={root}/baseline.npz'],
      'tiny': [*common, cli.TINY, '--max_steps=1'],
      'other_routing': [*common, f'{cli.TINY},routing=1,leaky=true', '--train=false', checkpoint],
      'other_shape': [*common, f'{cli.TINY},prime_atoms=4', '--train=false', checkpoint],
  }
  return root, dict(zip(cases, cli.run_in_one_process(cases.values())))


def test_training_from_an_original_checkpoint_takes_the_originals_first_adam_step(runs, oracle):
  """The oracle's 8 records as the training file, batch 8: one step is TF1 Adam on grad:*."""
  root, done = runs
  assert done['adam_step'].returncode == 0, done['adam_step'].stderr[-2000:]
  run_dir = root / 'adam_step'
  hparams = make_hparams('mnist', ORACLE_OVERRIDES)
  start, trained = (build_model('capsule', hparams, MNIST) for _ in range(2))
  checkpoints.restore_model(start, f'{ORACLE_DIR}/model.ckpt-0', RunConfig(hparams=hparams))
  tf.train.Checkpoint(model=trained).restore(str(run_dir / 'train' / 'model.ckpt-1')) \
      .expect_partial()
  before, after = variables_by_original_name(start), variables_by_original_name(trained)
  for name, variable in before.items():
    grad = oracle[f'grad:{name}'].reshape(variable.shape)
    expected = tf1_adam_step(variable.numpy(), grad, learning_rate=0.001)
    # Each weight moves by about the learning rate; 0.1% of it is what float32 gradients allow.
    np.testing.assert_allclose(after[name].numpy(), expected, rtol=0, atol=1e-6, err_msg=name)
    assert np.abs(after[name].numpy() - variable.numpy()).max() > 5e-4, name  # it did move


def test_a_file_of_n_records_at_batch_n_gives_those_n_records_every_step(tmp_path):
  """As the original's reader: shuffled within an epoch, never across two."""
  data_dir = cli.tiny_mnist_dir(tmp_path)
  dataset, _ = input_data.build_dataset('mnist', data_dir=str(data_dir), split='train',
                                        batch_size=8, seed=4)
  records = input_data.build_dataset('mnist', data_dir=str(data_dir), split='test',
                                     batch_size=8)[0]
  expected = sorted(image.tobytes() for image in next(iter(records))['images'].numpy())
  orders = []
  for batch in dataset.take(6):
    images = batch['images'].numpy()
    assert sorted(image.tobytes() for image in images) == expected
    orders.append(tuple(image.tobytes() for image in images))
  assert len(set(orders)) > 1  # and shuffled


def test_evaluation_with_other_routing_than_training_warns_and_runs(runs):
  """routing and leaky change no variable: the original let one evaluate routing=1 on a
  routing=3 model; shape-changing hparams are still refused."""
  _, cases = runs
  done, refused = cases['other_routing'], cases['other_shape']
  for case in (cases['tiny'], done):
    assert case.returncode == 0, case.stderr[-2000:]
  assert 'hparam routing changed from 3 to 1 (from --hparams_override)' in done.stderr
  assert 'hparam leaky changed from False to True' in done.stderr
  assert 'Total wrong predictions: ' in done.stdout
  assert refused.returncode == 2
  assert 'prime_atoms=8 (now 4, from --hparams_override)' in refused.stderr


def test_original_baseline_checkpoint_evaluates_to_its_recorded_logits(runs, baseline_oracle):
  root, cases = runs
  out, done = root / 'baseline.npz', cases['baseline']
  assert done.returncode == 0, done.stderr[-2000:]
  expected = baseline_oracle['expected_logits']
  logits = np.load(out)['logits']
  assert np.abs(logits - expected).max() <= 1e-5 * np.abs(expected).max()
  wrong = 8 - int(baseline_oracle['expected_correct'])
  assert f'Total wrong predictions: {wrong}, wrong percent: {100 * wrong / 8}%' in done.stdout
