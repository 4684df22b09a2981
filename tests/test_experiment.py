"""experiment.py end to end on tiny data: train, resume, evaluate, ensembles, devices, errors."""

import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from configs import RunConfig, flag_docs, make_hparams
from configs.spec import DatasetSpec
from input_data import idx, mnist
from layers import model_losses
from models import build_model
from runner import checkpoints, evaluation, inputs
from runner.evaluation import Evaluator, evaluate_checkpoint
from tests import cli
from tests.conftest import ORACLE_DIR


@pytest.fixture(scope='module')
def data_dir(tiny_data):
  return tiny_data


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_run):
  """conftest's tiny run (4 steps, checkpoints at 2 and 4, then resumed to 6), copied: the
  evaluations here write into its test/."""
  run = tiny_run.copy_to(tmp_path_factory.mktemp('trained') / 'run')
  return run.dir, run.args, run.first, run.second


@pytest.fixture(scope='module')
def evaluated(trained, tmp_path_factory):
  """One experiment.main after another in one process (a TensorFlow start each would prove
  nothing more): a new run started from `trained`'s checkpoint 4, checkpoint 4 evaluated, the
  original checkpoint's predictions, an ensemble of checkpoints 2 and 4 copied to m0 and m1;
  then MultiMNIST (verbose), and the packaged digits with --validate --distort, each trained 2
  steps and evaluated. (folder, {name: CompletedProcess})."""
  run_dir, common, *_ = trained
  out = tmp_path_factory.mktemp('evaluated')
  for i, step in enumerate((2, 4)):
    for suffix in ('.index', '.data-00000-of-00001'):
      shutil.copy(run_dir / 'train' / f'model.ckpt-{step}{suffix}', out / f'm{i}{suffix}')
  cases = {
      'from_checkpoint': [*[a for a in common if not a.startswith(('--summary_dir=',
                                                                  '--batch_size='))],
                          f'--summary_dir={out}/new', '--batch_size=8',
                          f'--checkpoint={run_dir}/train/model.ckpt-4', '--max_steps=5'],
      'checkpoint_4': [*common, '--train=false', f'--checkpoint={run_dir}/train/model.ckpt-4',
                       f'--predictions_out={out}/p.npz'],
      'ensemble': [*common, '--train=false', f'--checkpoint={out}/m{{}}', '--num_trials=2',
                   f'--predictions_out={out}/ensemble'],  # no .npz: written as named
      'oracle': ['--train=false', '--notf32', f'--checkpoint={ORACLE_DIR}/model.ckpt-0',
                 f'--data_dir={ORACLE_DIR}', '--hparams_override=num_prime_capsules=2,remake=false',
                 f'--predictions_out={out}/oracle.npz'],
  }
  multi = ['--data_dir=builtin', '--generate', '--num_targets=2', f'--summary_dir={out}/multi',
           cli.TINY + ',verbose=true', '--batch_size=6', '--max_steps=2', '--save_step=2']
  validated = ['--data_dir=builtin', '--validate', '--distort', f'--summary_dir={out}/validated',
               cli.TINY, '--batch_size=8', '--max_steps=2']
  cases.update({
      'multi_trained': multi,
      'multi': [*multi, '--train=false', '--eval_size=6', f'--predictions_out={out}/multi.npz'],
      'validated_trained': validated,
      'validated': [*validated, '--train=false', f'--predictions_out={out}/validated.npz'],
  })
  return out, dict(zip(cases, cli.run_in_one_process(cases.values(), check=True)))


def test_training_writes_checkpoints_events_and_config(trained):
  run_dir, _, first, _ = trained
  train_dir = run_dir / 'train'
  for step in (2, 4, 6):
    assert (train_dir / f'model.ckpt-{step}.index').exists()
  assert (train_dir / 'run_config.json').exists()
  # cli.TINY: conv1 9x9x1x8, primary capsules 9x9x8x(2x8), votes 6x6x2 x 8x(10x16), decoder.
  tiny = ((81 * 8 + 8) + (81 * 8 * 16 + 16) + (72 * 8 * 160 + 160)
          + (160 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784))
  assert f'total_params: {tiny} (1.5M)' in first.stderr
  assert re.search(r'step 4/4 +loss [\d.]+ +batch accuracy [\d.]+% +\d+ images/s +ETA', first.stderr)


def test_rerun_resumes_at_the_saved_step(trained):
  run_dir, _, _, second = trained
  assert 'resumed from' in second.stderr and 'model.ckpt-4 at step 4' in second.stderr
  steps = [s for s, _ in cli.scalars(run_dir / 'train')['loss/total']]
  assert steps == [1, 2, 3, 4, 5, 6]


def test_training_from_a_checkpoint_into_a_new_run_starts_at_its_step_with_its_weights(
    trained, data_dir, evaluated):
  """--checkpoint=<a run's checkpoint 4> into an empty --summary_dir: the new run starts at step
  4 with those weights. At --batch_size=8 every batch is the data's 8 records, so its first
  step's losses are checkpoint 4's on them, computed here by hand."""
  run_dir, *_ = trained
  new_dir = evaluated[0] / 'new'
  done = evaluated[1]['from_checkpoint']
  assert f'started from {run_dir}/train/model.ckpt-4 at step 4' in done.stderr
  config = RunConfig(hparams=make_hparams('mnist', cli.TINY.split('=', 1)[1]),
                     data_dir=str(data_dir))
  dataset, spec = inputs.make_dataset(config, 'test', 8)  # the same 8 records
  model = build_model('capsule', config.hparams, spec)
  checkpoints.restore_model(model, f'{run_dir}/train/model.ckpt-4', config)
  batch = next(iter(dataset))
  expected = model_losses(batch, model(batch, training=True), 'margin')
  new = cli.scalars(new_dir / 'train')
  for tag in ('total', 'classification', 'reconstruction'):  # the decoder's weights too
    assert [s for s, _ in new[f'loss/{tag}']] == [5], tag
    np.testing.assert_allclose(new[f'loss/{tag}'][0][1], expected[tag], rtol=1e-5, err_msg=tag)
  assert sorted(p.name for p in (new_dir / 'train').glob('*.index')) == ['model.ckpt-5.index']


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


def test_evaluation_counts_match_the_logits_it_wrote(trained, evaluated):
  run_dir, *_ = trained
  out, done = evaluated[0] / 'p.npz', evaluated[1]['checkpoint_4']
  predictions = np.load(out)
  assert predictions['logits'].shape == (8, 10) and predictions['labels'].shape == (8, 10)
  assert predictions['reconstructions'].shape == (8, 1, 784)
  wrong = int(np.sum(predictions['logits'].argmax(1) != predictions['labels'].argmax(1)))
  # The original's line, unchanged on stdout (its users' scripts parse it): 1 of 8 is 12.5%.
  assert f'Total wrong predictions: {wrong}, wrong percent: {100 * wrong / 8}%\n' in done.stdout
  assert f'{wrong} wrong of 8, {100 * wrong / 8:.2f}% error' in done.stderr
  test_scalars = cli.scalars(run_dir / 'test')
  assert test_scalars['wrong'] == [(4, wrong)] and test_scalars['correct'] == [(4, 8 - wrong)]


def test_predictions_of_the_original_checkpoint_reproduce_its_logits(evaluated, oracle):
  out = evaluated[0] / 'oracle.npz'
  np.testing.assert_allclose(np.load(out)['logits'], oracle['expected_logits'], atol=1e-5, rtol=0)


def test_ensemble_sums_member_logits(trained, data_dir, evaluated):
  run_dir, *_ = trained
  evaluator = Evaluator(RunConfig(hparams=make_hparams('mnist', cli.TINY.split('=', 1)[1]),
                                  data_dir=str(data_dir), train=False))
  members = []
  for step in (2, 4):  # the checkpoints the fixture copied to m0 and m1
    evaluator.restore(str(run_dir / 'train' / f'model.ckpt-{step}'))
    members.append(evaluator.predict()['logits'])
  predict = evaluator._predict  # pylint: disable=protected-access
  assert predict.experimental_get_tracing_count() == 1  # one compiled function for every member
  out, done = evaluated[0] / 'ensemble', evaluated[1]['ensemble']
  assert not list(evaluated[0].glob('ensemble.*'))  # neither ensemble.npz nor a .partial
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


def test_multimnist_trains_and_evaluates_with_two_targets(evaluated):
  out, done = evaluated[0], evaluated[1]['multi']
  predictions = np.load(out / 'multi.npz')
  assert predictions['labels'].shape == (6, 10) and set(predictions['labels'].sum(1)) == {2.0}
  assert predictions['reconstructions'].shape == (6, 2, 36 * 36)
  assert 'Total wrong predictions' in done.stdout
  assert 'reconstruction' in cli.tags(out / 'multi' / 'train')
  assert 'loss/reconstruction_spare' in cli.tags(out / 'multi' / 'train')


def test_verbose_training_writes_histograms_of_every_weight_and_of_the_whole_batch(evaluated):
  counts = cli.histogram_counts(evaluated[0] / 'multi' / 'train')
  model = build_model('capsule', make_hparams(overrides=cli.TINY.split('=', 1)[1]),
                      DatasetSpec('mnist', 36, 36, 1, 10, num_targets=2))
  within_model = lambda path: path.split('/', 1)[1]  # less the model's name (capsule_model_N)
  assert {within_model(k[len('weights/'):]): v for k, v in counts.items()
          if k.startswith('weights/')} == {within_model(v.path): int(tf.size(v))
                                            for v in model.trainable_variables}
  assert counts['activations/logits'] == 6 * 10  # the batch of 6, not the strip's 4 images


@pytest.fixture(scope='module')
def validated_and_distorted(evaluated):
  """The packaged digits trained 2 steps and evaluated with --validate --distort (one run
  serves both flags' tests): (CompletedProcess, the evaluation's predictions)."""
  out, done = evaluated
  return done['validated'], np.load(out / 'validated.npz')


def test_validate_evaluates_the_first_sixth_of_the_training_digits(validated_and_distorted):
  done, predictions = validated_and_distorted
  _, train_labels = idx.load_split(mnist.default_raw_dir(), 'train')
  assert len(train_labels) == 4000
  held_out = train_labels[:4000 // 6]  # 666, in order: evaluation does not shuffle
  np.testing.assert_array_equal(predictions['labels'].argmax(1), held_out)
  wrong = int(np.sum(predictions['logits'].argmax(1) != held_out))
  assert f'Total wrong predictions: {wrong}, wrong percent: {100 * wrong / 666}%\n' in done.stdout


def test_distort_evaluates_central_24x24_crops(validated_and_distorted):
  _, predictions = validated_and_distorted
  assert predictions['reconstructions'].shape == (666, 1, 24 * 24)


def test_help_and_flag_docs_explain_every_setting():
  """Flags are generated from RunConfig: --help names every one, docs/flags.md is the table
  configs.flag_docs generates from them, the README links to it, and docs/running.md sorts every
  flag into the original's and the additions."""
  done = cli.run('--help', check=False)  # absl exits 1 after printing help
  fields = RunConfig.flag_fields()
  assert len(fields) > 30
  for field in fields:
    assert re.search(rf'--(\[no\])?{field.name}: \S', done.stdout), field.name
  assert (cli.ROOT / 'docs' / 'flags.md').read_text() == flag_docs.markdown(), (
      f'docs/flags.md is not RunConfig\'s flags: regenerate it with {flag_docs.COMMAND}')
  assert '](docs/flags.md)' in (cli.ROOT / 'README.md').read_text()
  running = (cli.ROOT / 'docs' / 'running.md').read_text()
  listed, names = set(re.findall(r'`--(\w+)', running.split('\n## ')[0])), {f.name for f in fields}
  assert listed == names, (f'docs/running.md\'s first paragraph lacks {names - listed} and '
                           f'names gone flags {listed - names}')
