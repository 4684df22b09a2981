"""Evaluation beside training: a checkpoint that vanishes before it is read is skipped."""

import logging
import shutil

import tensorflow as tf

from configs import RunConfig, make_hparams
from runner import checkpoints, evaluation
from tests import cli


def test_continuous_evaluation_skips_a_checkpoint_deleted_before_it_was_read(
    tiny_run, tiny_data, tmp_path, monkeypatch, caplog):
  """Training with --keep_checkpoints deletes old checkpoints: here checkpoint 4 is deleted
  (and 6 published) between the evaluator seeing it and reading it. The evaluator says so,
  skips it, and evaluates 6."""
  train_dir = tmp_path / 'train'
  shutil.copytree(tiny_run.dir / 'train', train_dir)
  publish = lambda step: tf.compat.v1.train.update_checkpoint_state(
      str(train_dir), str(train_dir / f'model.ckpt-{step}'))
  publish(4)
  evaluate_checkpoint, asked = evaluation.evaluate_checkpoint, []

  def delete_the_first_then_evaluate(evaluator, path, writer=None):
    asked.append(checkpoints.step_of(path))
    if len(asked) == 1:
      for part in train_dir.glob('model.ckpt-4.*'):
        part.unlink()
      publish(6)
    return evaluate_checkpoint(evaluator, path, writer)

  monkeypatch.setattr(evaluation, 'evaluate_checkpoint', delete_the_first_then_evaluate)
  config = RunConfig(hparams=make_hparams('mnist', cli.TINY.split('=', 1)[1]), train=False,
                     data_dir=str(tiny_data), summary_dir=str(tmp_path), max_steps=6,
                     eval_timeout_secs=30)
  with caplog.at_level(logging.WARNING):
    result = evaluation.evaluate(config)
  assert asked == [4, 6] and result['step'] == 6 and result['total'] == 8
  skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith('skipped')]
  assert len(skipped) == 1
  assert skipped[0].startswith(f'skipped {train_dir}/model.ckpt-4, deleted before it could be '
                               'read: ')
  assert [s for s, _ in cli.scalars(tmp_path / 'test')['correct']] == [6]
