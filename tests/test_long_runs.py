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


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """6 steps in one go, and 3 steps then a rerun to 6, with the same seed."""
  root = tmp_path_factory.mktemp('long')
  cli.run(*COMMON, f'--summary_dir={root}/whole', '--max_steps=6')
  cli.run(*COMMON, f'--summary_dir={root}/split', '--max_steps=3')
  resumed = cli.run(*COMMON, f'--summary_dir={root}/split', '--max_steps=6')
  return root, resumed


def test_a_resumed_run_continues_the_data_stream_it_was_on(runs):
  """The input iterator is in the checkpoint: steps 4-6 after a resume see the batches an
  uninterrupted run sees there (restarting the stream from the seed would replay steps 1-3)."""
  root, resumed = runs
  assert 'resumed from' in resumed.stderr and 'data stream restarts' not in resumed.stderr
  whole = cli.scalars(root / 'whole' / 'train')['loss/total']
  split = cli.scalars(root / 'split' / 'train')['loss/total']
  assert split == whole and [s for s, _ in split] == [1, 2, 3, 4, 5, 6]
  assert len({v for _, v in whole}) == 6
  final_whole, final_split = (weights(root / r / 'train' / 'model.ckpt-6')
                              for r in ('whole', 'split'))
  for name, value in final_whole.items():
    np.testing.assert_array_equal(final_split[name], value, err_msg=name)


def test_a_cut_short_latest_checkpoint_resumes_from_the_newest_complete_one(runs, tmp_path):
  root, _ = runs
  run = tmp_path / 'run'
  shutil.copytree(root / 'split', run)
  truncate(run / 'train' / 'model.ckpt-6')
  done = cli.run(*COMMON, f'--summary_dir={run}', '--max_steps=7')
  assert (f'the latest checkpoint {run}/train/model.ckpt-6 is unreadable; resumed from '
          f'{run}/train/model.ckpt-3, the newest complete one') in done.stderr
  steps = [s for s, _ in cli.scalars(run / 'train')['loss/total']]
  assert steps[-4:] == [4, 5, 6, 7]  # steps 4-6 trained again from step 3
  for step in (3, 6, 7):  # the cut-short step 6 was written again, whole
    weights(run / 'train' / f'model.ckpt-{step}')


def test_a_run_whose_every_checkpoint_is_cut_short_stops_instead_of_starting_over(runs,
                                                                                  tmp_path):
  root, _ = runs
  run = tmp_path / 'run'
  shutil.copytree(root / 'split', run)
  for step in (3, 6):
    truncate(run / 'train' / f'model.ckpt-{step}')
  done = cli.run(*COMMON, f'--summary_dir={run}', '--max_steps=7', check=False)
  assert done.returncode == 2
  assert [l for l in done.stderr.splitlines() if l.startswith('error:')] == [
      f'error: no checkpoint in {run}/train can be read (the latest: {run}/train/model.ckpt-6); '
      'move the broken ones away to start again, or use a new --summary_dir']


def test_a_cut_short_checkpoint_is_one_error_line_naming_it(runs, tmp_path):
  root, _ = runs
  for suffix in ('.index', '.data-00000-of-00001'):
    shutil.copy(root / 'whole' / 'train' / f'model.ckpt-6{suffix}', tmp_path / f'm{suffix}')
  truncate(tmp_path / 'm')
  for flags in (['--train=false'], [f'--summary_dir={tmp_path}/new', '--max_steps=8']):
    done = cli.run(*COMMON, f'--checkpoint={tmp_path}/m', *flags, check=False)
    errors = [l for l in done.stderr.splitlines() if l.startswith('error:')]
    assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
    assert len(errors) == 1
    assert errors[0].startswith(f'error: checkpoint {tmp_path}/m is unreadable (cut short or '
                                'corrupt: ')


def test_checkpoint_flag_with_a_directory_means_its_latest_checkpoint(runs):
  root, _ = runs
  for directory in (root / 'whole', root / 'whole' / 'train'):
    done = cli.run(*COMMON, '--train=false', f'--checkpoint={directory}', '--eval_size=16')
    assert f'{root}/whole/train/model.ckpt-6 (step 6)' in done.stderr
  missing = cli.run(*COMMON, '--train=false', f'--checkpoint={root}', check=False)
  assert missing.returncode == 2 and f'error: no checkpoint in {root}: ' in missing.stderr


def test_a_collapsed_run_says_so_once_and_a_learning_run_never(runs, tmp_path):
  root, _ = runs
  collapsed = cli.run('--data_dir=builtin', f'{cli.TINY},learning_rate=1000', '--batch_size=16',
                      '--log_every=2', '--max_steps=16', f'--summary_dir={tmp_path}')
  warnings = [l for l in collapsed.stderr.splitlines() if 'the run has collapsed' in l]
  assert len(warnings) == 1
  assert 'step 6: ' in warnings[0] and 'learning_rate=1000 from --hparams_override' in warnings[0]
  spreads = [v for _, v in cli.scalars(tmp_path / 'train')['logit_spread']]
  assert max(spreads[2:]) < 1e-6
  for run in ('whole', 'split'):  # the healthy runs above
    assert min(v for _, v in cli.scalars(root / run / 'train')['logit_spread']) > 1e-4
  assert 'collapsed' not in runs[1].stderr


def test_evaluation_inside_training_writes_what_a_separate_evaluation_does(runs, tmp_path):
  root, _ = runs
  run = tmp_path / 'run'
  done = cli.run(*COMMON, f'--summary_dir={run}', '--max_steps=6', '--eval_every=3',
                 '--eval_size=40')
  lines = [l for l in done.stdout.splitlines() if l.startswith('Total wrong predictions: ')]
  assert len(lines) == 2
  inside = cli.scalars(run / 'test')
  assert [s for s, _ in inside['correct']] == [3, 6]
  separate = cli.run(*COMMON, '--train=false', f'--checkpoint={run}/train/model.ckpt-6',
                     '--eval_size=40')
  assert lines[-1] in separate.stdout
  assert inside['total'] == [(3, 40.0), (6, 40.0)]
