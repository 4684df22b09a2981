"""Device choices: who writes in a multi-machine run, XLA per device, GPU count checks."""

import types

import pytest
import tensorflow as tf

from configs import UserError
from runner.devices import is_chief, make_strategy, use_xla


def strategy_of(cluster, task_type, task_id):
  resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
      tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)
  return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.mark.parametrize('cluster, task_type, task_id, chief', [
    ({'worker': ['a:1', 'b:1']}, 'worker', 0, True),
    ({'worker': ['a:1', 'b:1']}, 'worker', 1, False),
    ({'chief': ['c:1'], 'worker': ['a:1']}, 'chief', 0, True),
    ({'chief': ['c:1'], 'worker': ['a:1']}, 'worker', 0, False),
])
def test_only_the_chief_writes_the_runs_files(cluster, task_type, task_id, chief):
  assert is_chief(strategy_of(cluster, task_type, task_id)) == chief


def test_single_process_strategies_are_chief():
  assert is_chief(tf.distribute.get_strategy())


def test_xla_defaults_to_gpus_only():
  has_gpu = bool(tf.config.list_physical_devices('GPU'))
  assert use_xla(None) == has_gpu
  assert use_xla(True) and not use_xla(False)


def test_asking_for_more_gpus_than_present_is_refused():
  count = len(tf.config.list_physical_devices('GPU'))
  with pytest.raises(UserError, match=f'--num_gpus={count + 2} but this machine shows {count}'):
    make_strategy(num_gpus=count + 2)
