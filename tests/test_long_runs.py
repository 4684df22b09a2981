"""Week-long runs: resume where the data left off, survive bad checkpoints, notice collapse,
evaluate inside training."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests import cli

COMMON = ['--data_dir=builtin', '--generate', cli.TINY, '--batch_size=8', '--log_every=1',
          '--save_step=3', '--seed=4', '--deterministic']


def weights(path):
  reader = tf.train.load_checkpoint(str(path))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith('model/')}


def truncate(path):
  """Cuts a checkpoint's data file in half, as a full disk or an interrupted copy does."""
  data = f'{path}.data-00000-of-00001'
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)


def errors(done):
  return [l for l in done.stderr.splitlines() if l.startswith('error:')]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """In one process (TensorFlow starts once): 6 steps in one go; 3 steps then a rerun to 6 with
  the same seed; a seeded run at learning rate 1000, which collapses by step 6; 6 steps
  evaluating every 3.
  (folder, {name: CompletedProcess})."""
  root = tmp_path_factory.mktemp('long')
  cases = {
      'whole': [*COMMON, f'--summary_dir={root}/whole', '--max_steps=6'],
      'split': [*COMMON, f'--summary_dir={root}/split', '--max_steps=3'],
      'resumed': [*COMMON, f'--summary_dir={root}/split', '--max_steps=6'],
      'collapsed': ['--data_dir=builtin', f'{cli.TINY},learning_rate=1000', '--batch_size=16',
                    '--log_every=2', '--max_steps=16', '--seed=4', '--deterministic',
                    f'--summary_dir={root}/collapsed'],
      'inside': [*COMMON, f'--summary_dir={root}/inside', '--max_steps=6', '--eval_every=3',
                 '--eval_size=40'],
  }
  done = cli.run_in_one_process(cases.values(), check=True)
  return root, dict(zip(cases, done))


@pytest.fixture(scope='module')
def reruns(runs):
  """Copies of the runs above damaged as a full disk or an interrupted copy leaves them, and the
  commands a user then runs, in one process: {name: (folder, CompletedProcess)}."""
  root, _ = runs
  latest_cut, all_cut, single = root / 'latest_cut', root / 'all_cut', root / 'single'
  shutil.copytree(root / 'split', latest_cut)
  truncate(latest_cut / 'train' / 'model.ckpt-6')
  shutil.copytree(root / 'split', all_cut)
  for step in (3, 6):
    truncate(all_cut / 'train' / f'model.ckpt-{step}')
  single.mkdir()
  for suffix in ('.index', '.data-00000-of-00001'):
    shutil.copy(root / 'whole' / 'train' / f'model.ckpt-6{suffix}', single / f'm{suffix}')
  truncate(single / 'm')
  cases = {
      'latest_cut': (latest_cut, [f'--summary_dir={latest_cut}', '--max_steps=7']),
      'all_cut': (all_cut, [f'--summary_dir={all_cut}', '--max_steps=7']),
      'cut_evaluated': (single, [f'--checkpoint={single}/m', '--train=false']),
      'cut_trained_from': (single, [f'--checkpoint={single}/m', f'--summary_dir={single}/new',
                                    '--max_steps=8']),
      'run_dir': (root, ['--train=false', f'--checkpoint={root}/whole', '--eval_size=16']),
      'train_dir': (root, ['--train=false', f'--checkpoint={root}/whole/train',
                           '--eval_size=16']),
      'no_checkpoint': (root, ['--train=false', f'--checkpoint={root}']),
      'separate': (root, ['--train=false', f'--checkpoint={root}/inside/train/model.ckpt-6',
                          '--eval_size=40']),
  }
  done = cli.run_in_one_process([[*COMMON, *args] for _, args in cases.values()])
  return {name: (folder, result) for (name, (folder, _)), result in zip(cases.items(), done)}


def test_a_resumed_run_continues_the_data_stream_it_was_on(runs):
  """Steps 4-6 after a resume see the batches an uninterrupted run sees there (restarting the
  stream from the seed would replay steps 1-3)."""
  root, done = runs
  resumed = done['resumed']
  assert 'resumed from' in resumed.stderr and 'data stream restarts' not in resumed.stderr
  whole = cli.scalars(root / 'whole' / 'train')['loss/total']
  split = cli.scalars(root / 'split' / 'train')['loss/total']
  assert split == whole and [s for s, _ in split] == [1, 2, 3, 4, 5, 6]
  assert len({v for _, v in whole}) == 6
  final_whole, final_split = (weights(root / r / 'train' / 'model.ckpt-6')
                              for r in ('whole', 'split'))
  for name, value in final_whole.items():
    np.testing.assert_array_equal(final_split[name], value, err_msg=name)


def test_a_cut_short_latest_checkpoint_resumes_from_the_newest_complete_one(reruns):
  run, done = reruns['latest_cut']
  assert done.returncode == 0, done.stderr[-2000:]
  assert (f'the latest checkpoint {run}/train/model.ckpt-6 is unreadable; resumed from '
          f'{run}/train/model.ckpt-3, the newest complete one') in done.stderr
  steps = [s for s, _ in cli.scalars(run / 'train')['loss/total']]
  assert steps[-4:] == [4, 5, 6, 7]  # steps 4-6 trained again from step 3
  for step in (3, 6, 7):  # the cut-short step 6 was written again, whole
    weights(run / 'train' / f'model.ckpt-{step}')


def test_a_run_whose_every_checkpoint_is_cut_short_stops_instead_of_starting_over(reruns):
  run, done = reruns['all_cut']
  assert done.returncode == 2
  assert errors(done) == [
      f'error: no checkpoint in {run}/train can be read (the latest: {run}/train/model.ckpt-6); '
      'move the broken ones away to start again, or use a new --summary_dir']


@pytest.mark.parametrize('case', ['cut_evaluated', 'cut_trained_from'])
def test_a_cut_short_checkpoint_is_one_error_line_naming_it(reruns, case):
  folder, done = reruns[case]
  assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
  assert len(errors(done)) == 1
  assert errors(done)[0].startswith(f'error: checkpoint {folder}/m is unreadable (cut short or '
                                    'corrupt: ')


def test_checkpoint_flag_with_a_directory_means_its_latest_checkpoint(reruns):
  for case in ('run_dir', 'train_dir'):
    root, done = reruns[case]
    assert done.returncode == 0, done.stderr[-2000:]
    assert f'{root}/whole/train/model.ckpt-6 (step 6)' in done.stderr
  root, missing = reruns['no_checkpoint']
  assert missing.returncode == 2 and f'error: no checkpoint in {root}: ' in missing.stderr


def test_a_collapsed_run_says_so_once_and_a_learning_run_never(runs):
  root, done = runs
  warnings = [l for l in done['collapsed'].stderr.splitlines() if 'the run has collapsed' in l]
  assert len(warnings) == 1
  assert 'step 6: ' in warnings[0] and 'learning_rate=1000 from --hparams_override' in warnings[0]
  spreads = [v for _, v in cli.scalars(root / 'collapsed' / 'train')['logit_spread']]
  assert max(spreads[2:]) < 1e-6
  for run in ('whole', 'split'):  # the healthy runs above
    assert min(v for _, v in cli.scalars(root / run / 'train')['logit_spread']) > 1e-4
  assert not [name for name in ('whole', 'split', 'resumed', 'inside')
              if 'collapsed' in done[name].stderr]


def test_evaluation_inside_training_writes_what_a_separate_evaluation_does(runs, reruns):
  root, done = runs
  lines = [l for l in done['inside'].stdout.splitlines() if l.startswith('Total wrong ')]
  assert len(lines) == 2
  inside = cli.scalars(root / 'inside' / 'test')
  assert [s for s, _ in inside['correct']] == [3, 6]
  _, separate = reruns['separate']
  assert separate.returncode == 0, separate.stderr[-2000:]
  assert lines[-1] in separate.stdout
  assert inside['total'] == [(3, 40.0), (6, 40.0)]
