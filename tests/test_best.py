"""SUMMARY_DIR/best/: the lowest-error checkpoint of a run's evaluation, kept whatever
--keep_checkpoints deletes, and evaluable as --checkpoint=SUMMARY_DIR/best."""

import filecmp
import json
import pathlib
import shutil
import threading
import time

import pytest

from configs import RunConfig, make_hparams
from runner import best, evaluation
from tests import cli

# A learning rate that grows 10x every 8 steps from 0.003: the test error falls by a third, then
# rises to about chance (156, 122, 107, 162, 186, 177 wrong of 200 at steps 4..24, with AVX-512
# and with oneDNN held to AVX2): margins no machine's rounding closes.
UP_AND_DOWN = ('--hparams_override=conv1_filters=8,num_prime_capsules=2,learning_rate=0.003,'
               'decay_rate=1000,decay_steps=24')


def lowest_error_step(test_dir):
  """The step of the fewest wrong test examples in the events (the earlier one on a tie)."""
  wrong = cli.scalars(test_dir)['wrong']
  return min(wrong, key=lambda point: (point[1], point[0]))[0], wrong


@pytest.fixture(scope='module')
def up_and_down(tmp_path_factory):
  """24 steps on the built-in digits, evaluated every 4 (200 test digits), keeping 1 checkpoint;
  then --checkpoint=RUN/best evaluated."""
  run_dir = tmp_path_factory.mktemp('best_run')
  # One batch size for both: another one sums in another order, which can flip a near-tie.
  common = ['--data_dir=builtin', UP_AND_DOWN, '--eval_size=200', '--batch_size=32']
  trained, evaluated = cli.run_in_one_process([
      [*common, f'--summary_dir={run_dir}', '--max_steps=24', '--eval_every=4', '--save_step=4',
       '--log_every=4', '--seed=1', '--keep_checkpoints=1'],
      [*common, '--train=false', f'--checkpoint={run_dir}/best']])
  assert trained.returncode == 0, trained.stderr[-2000:]
  return run_dir, evaluated


def test_best_holds_the_lowest_error_checkpoint_of_a_run_that_got_worse(up_and_down):
  run_dir, _ = up_and_down
  step, wrong = lowest_error_step(run_dir / 'test')
  errors = [w for _, w in wrong]
  assert min(errors) < errors[0] and errors[-1] > min(errors)  # down, then up again
  assert sorted(p.name for p in (run_dir / 'train').glob('*.index')) == ['model.ckpt-24.index']
  info = json.loads((run_dir / 'best' / 'best.json').read_text())
  assert (info['step'], info['split']) == (step, 'test')
  assert info['error'] == pytest.approx(dict(wrong)[step] / 200)
  assert (run_dir / 'best' / f'model.ckpt-{step}.index').exists()
  assert not list(run_dir.glob('best.tmp-*'))


def test_evaluating_best_gives_the_error_it_was_picked_with(up_and_down):
  run_dir, evaluated = up_and_down
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  _, wrong = lowest_error_step(run_dir / 'test')
  step = json.loads((run_dir / 'best' / 'best.json').read_text())['step']
  assert f'Total wrong predictions: {int(dict(wrong)[step])}, ' in evaluated.stdout


def test_continuous_evaluation_copies_the_best_checkpoint_and_a_tie_keeps_the_earlier(
    tiny_run, tiny_data, tmp_path):
  shutil.copytree(tiny_run.dir / 'train', tmp_path / 'train')
  config = RunConfig(hparams=make_hparams('mnist', cli.TINY.split('=', 1)[1]), train=False,
                     data_dir=str(tiny_data), summary_dir=str(tmp_path), max_steps=6,
                     eval_timeout_secs=30)
  evaluation.evaluate(config)
  step, wrong = lowest_error_step(tmp_path / 'test')
  assert best.read_info(str(tmp_path))['step'] == step
  for suffix in ('index', 'data-00000-of-00001'):
    assert filecmp.cmp(tmp_path / 'train' / f'model.ckpt-{step}.{suffix}',
                       tmp_path / 'best' / f'model.ckpt-{step}.{suffix}', shallow=False)
  tie = {'wrong': int(dict(wrong)[step]), 'total': 8}
  assert not best.keep_if_best(config, dict(tie, step=step + 1), best.copier('unused'))
  assert best.keep_if_best(config, dict(tie, step=step - 1),
                           best.copier(str(tmp_path / 'train' / f'model.ckpt-{step}')))
  assert best.read_info(str(tmp_path))['step'] == step - 1


def test_two_evaluators_at_once_keep_the_better_checkpoint(tmp_path):
  """Evaluator A (error 40%) is still writing best/ when B (30%) decides: without taking turns
  B would compare with no best at all, and A's slower write would land last."""
  config = RunConfig(summary_dir=str(tmp_path), train=False)
  started = threading.Event()

  def write(step, slow):
    def fill(prefix):
      if slow:
        started.set()
        time.sleep(1.0)
      pathlib.Path(f'{prefix}.index').write_text(str(step))
    return fill

  a = threading.Thread(target=best.keep_if_best,
                       args=(config, {'step': 4, 'wrong': 4, 'total': 10}, write(4, True)))
  a.start()
  started.wait(10)
  assert best.keep_if_best(config, {'step': 6, 'wrong': 3, 'total': 10}, write(6, False))
  a.join()
  assert best.read_info(str(tmp_path))['step'] == 6
  assert (tmp_path / 'best' / 'model.ckpt-6.index').read_text() == '6'
