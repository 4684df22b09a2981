"""experiment.py end to end on tiny data: train, resume, evaluate, ensembles, devices, errors."""

import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from configs import RunConfig, make_hparams
from runner import evaluation
from runner.evaluation import Evaluator, evaluate_checkpoint
from tests import cli
from tests.conftest import ORACLE_DIR


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return cli.tiny_mnist_dir(tmp_path_factory.mktemp('data'))


@pytest.fixture(scope='module')
def trained(tmp_path_factory, data_dir):
  """A run trained 4 steps (checkpoints at 2 and 4), then resumed to 6."""
  run_dir = tmp_path_factory.mktemp('run')
  common = [f'--data_dir={data_dir}', f'--summary_dir={run_dir}', cli.TINY, '--batch_size=4',
            '--save_step=2', '--log_every=1', '--seed=3']
  first = cli.run(*common, '--max_steps=4')
  second = cli.run(*common, '--max_steps=6')
  return run_dir, common, first, second


def test_training_writes_checkpoints_events_and_config(trained):
  run_dir, _, first, _ = trained
  train_dir = run_dir / 'train'
  for step in (2, 4, 6):
    assert (train_dir / f'model.ckpt-{step}.index').exists()
  assert (train_dir / 'run_config.json').exists()
  assert re.search(r'total_params: \d+', first.stderr)
  assert re.search(r'step 4/4 +loss [\d.]+ +batch accuracy [\d.]+% +\d+ images/s +ETA', first.stderr)


def test_rerun_resumes_at_the_saved_step(trained):
  run_dir, _, _, second = trained
  assert 'resumed from' in second.stderr and 'model.ckpt-4 at step 4' in second.stderr
  steps = [s for s, _ in cli.scalars(run_dir / 'train')['loss/total']]
  assert steps == [1, 2, 3, 4, 5, 6]


def test_training_events_hold_scalars_images_and_hparams(trained):
  run_dir, *_ = trained
  tags = cli.tags(run_dir / 'train')
  for tag in ('loss/total', 'loss/classification', 'loss/reconstruction', 'batch_accuracy',
              'learning_rate', 'images_per_second', 'reconstruction'):
    assert tag in tags, tag
  assert 'accuracy' not in tags  # that name is the test accuracy, in test/
  # One HParams session per run directory, its metric the test accuracy (in test/).
  assert {'_hparams_/experiment', '_hparams_/session_start_info'} <= cli.tags(run_dir)
  experiment = cli.hparams_experiment(run_dir)
  assert [(m.name.group, m.name.tag) for m in experiment.metric_infos][0] == ('test', 'accuracy')
  learning_rates = dict(cli.scalars(run_dir / 'train')['learning_rate'])
  np.testing.assert_allclose(learning_rates[2000 // 1000], 0.001 * 0.96 ** (2 / 2000), rtol=1e-6)


def test_evaluation_counts_match_the_logits_it_wrote(trained, data_dir, tmp_path):
  run_dir, common, *_ = trained
  out = tmp_path / 'p.npz'
  done = cli.run(*common, '--train=false', f'--checkpoint={run_dir}/train/model.ckpt-4',
                 f'--predictions_out={out}')
  predictions = np.load(out)
  assert predictions['logits'].shape == (8, 10) and predictions['labels'].shape == (8, 10)
  assert predictions['reconstructions'].shape == (8, 1, 784)
  wrong = int(np.sum(predictions['logits'].argmax(1) != predictions['labels'].argmax(1)))
  # The original's line, unchanged on stdout (its users' scripts parse it): 1 of 8 is 12.5%.
  assert f'Total wrong predictions: {wrong}, wrong percent: {100 * wrong / 8}%\n' in done.stdout
  assert f'{wrong} wrong of 8, {100 * wrong / 8:.2f}% error' in done.stderr
  test_scalars = cli.scalars(run_dir / 'test')
  assert test_scalars['wrong'] == [(4, wrong)] and test_scalars['correct'] == [(4, 8 - wrong)]


def test_predictions_of_the_original_checkpoint_reproduce_its_logits(tmp_path, oracle):
  out = tmp_path / 'oracle.npz'
  cli.run('--train=false', f'--checkpoint={ORACLE_DIR}/model.ckpt-0', f'--data_dir={ORACLE_DIR}',
          '--hparams_override=num_prime_capsules=2,remake=false', f'--predictions_out={out}')
  np.testing.assert_allclose(np.load(out)['logits'], oracle['expected_logits'], atol=1e-5, rtol=0)


def test_ensemble_sums_member_logits(trained, data_dir, tmp_path):
  run_dir, common, *_ = trained
  evaluator = Evaluator(RunConfig(hparams=make_hparams('mnist', cli.TINY.split('=', 1)[1]),
                                  data_dir=str(data_dir), train=False))
  members = []
  for i, step in enumerate((2, 4)):
    for suffix in ('.index', '.data-00000-of-00001'):
      shutil.copy(run_dir / 'train' / f'model.ckpt-{step}{suffix}', tmp_path / f'm{i}{suffix}')
    evaluator.restore(str(run_dir / 'train' / f'model.ckpt-{step}'))
    members.append(evaluator.predict()['logits'])
  predict = evaluator._predict  # pylint: disable=protected-access
  assert predict.experimental_get_tracing_count() == 1  # one compiled function for every member
  out = tmp_path / 'ensemble.npz'
  done = cli.run(*common, '--train=false', f'--checkpoint={tmp_path}/m{{}}', '--num_trials=2',
                 f'--predictions_out={out}')
  np.testing.assert_allclose(np.load(out)['logits'], members[0] + members[1], rtol=1e-5)
  assert 'ensemble of 2: ' in done.stderr and done.stderr.count('member ') == 2
  assert done.stdout.count('Total wrong predictions: ') == 3  # each member, then the ensemble


def test_continuous_evaluation_compiles_once_for_every_checkpoint(trained, data_dir, tmp_path,
                                                                 monkeypatch):
  """Checkpoints 2, 4, 6 appear one by one (each after the previous one was evaluated)."""
  run_dir, *_ = trained
  train_dir = tmp_path / 'train'
  shutil.copytree(run_dir / 'train', train_dir)
  publish = lambda step: tf.compat.v1.train.update_checkpoint_state(
      str(train_dir), str(train_dir / f'model.ckpt-{step}'))
  publish(2)
  evaluators = []

  def evaluate_then_publish_the_next(evaluator, path, writer=None):
    result = evaluate_checkpoint(evaluator, path, writer)
    evaluators.append((evaluator, evaluator._predict))  # pylint: disable=protected-access
    if result['step'] < 6:
      publish(result['step'] + 2)
    return result

  monkeypatch.setattr(evaluation, 'evaluate_checkpoint', evaluate_then_publish_the_next)
  config = RunConfig(hparams=make_hparams('mnist', cli.TINY.split('=', 1)[1]), train=False,
                     data_dir=str(data_dir), summary_dir=str(tmp_path), max_steps=6,
                     eval_timeout_secs=30)
  evaluation.evaluate(config)
  assert [s for s, _ in cli.scalars(tmp_path / 'test')['correct']] == [2, 4, 6]
  assert len({id(e) for e, _ in evaluators}) == 1 and len({id(f) for _, f in evaluators}) == 1
  assert evaluators[0][1].experimental_get_tracing_count() == 1


def test_two_logical_cpu_devices_match_one_device(data_dir, tmp_path):
  losses = []
  for replicas in (0, 2):
    run_dir = tmp_path / f'replicas{replicas}'
    cli.run(f'--data_dir={data_dir}', f'--summary_dir={run_dir}', cli.TINY, '--batch_size=8',
            '--max_steps=3', '--log_every=1', '--seed=5', '--deterministic',
            f'--cpu_replicas={replicas}', '--distort=false')
    losses.append([v for _, v in cli.scalars(run_dir / 'train')['loss/total']])
  np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def test_multimnist_trains_and_evaluates_with_two_targets(tmp_path):
  common = ['--data_dir=builtin', '--generate', '--num_targets=2', f'--summary_dir={tmp_path}',
            cli.TINY,
            '--batch_size=4', '--max_steps=2', '--save_step=2']
  cli.run(*common)
  out = tmp_path / 'p.npz'
  done = cli.run(*common, '--train=false', '--eval_size=6', f'--predictions_out={out}')
  predictions = np.load(out)
  assert predictions['labels'].shape == (6, 10) and set(predictions['labels'].sum(1)) == {2.0}
  assert predictions['reconstructions'].shape == (6, 2, 36 * 36)
  assert 'Total wrong predictions' in done.stdout
  assert 'reconstruction' in cli.tags(tmp_path / 'train')
  assert 'loss/reconstruction_spare' in cli.tags(tmp_path / 'train')


def test_help_and_readme_explain_every_setting():
  """Flags are generated from RunConfig: --help and README.md must name every one of them."""
  done = cli.run('--help', check=False)  # absl exits 1 after printing help
  readme = (cli.ROOT / 'README.md').read_text()
  fields = RunConfig.flag_fields()
  assert len(fields) > 30
  for field in fields:
    assert re.search(rf'--(\[no\])?{field.name}: \S', done.stdout), field.name
    assert f'--{field.name}' in readme, f'README.md does not mention --{field.name}'
  documented = set(re.findall(r'`--(\w+)', readme.split('## Running experiments')[1]
                              .split('\n## ')[0]))
  assert documented <= {f.name for f in fields}, documented - {f.name for f in fields}
