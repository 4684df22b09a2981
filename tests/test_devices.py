"""Device choices: who writes in a multi-machine run, XLA and conv per device, GPU counts."""

import types

import pytest
import tensorflow as tf

from configs import RunConfig, UserError
from models import ComputeOptions
from runner import devices
from runner.devices import compute_options, is_chief, make_strategy, use_xla


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


@pytest.mark.parametrize('gpu, flags, whole_step_xla, options', [
    (True, {}, True, ComputeOptions('conv', True)),  # cuDNN, everything compiled
    (False, {}, False, ComputeOptions('matmul', True)),  # CPU: fast conv, only routing compiled
    (False, {'jit_compile': False}, False, ComputeOptions('matmul', False)),  # no XLA at all
    (True, {'jit_compile': False, 'conv_impl': 'matmul'}, False, ComputeOptions('matmul', False)),
    (False, {'jit_compile': True, 'conv_impl': 'conv'}, True, ComputeOptions('conv', True)),
])
def test_devices_pick_xla_and_conv_per_device_unless_the_flags_say(monkeypatch, gpu, flags,
                                                                   whole_step_xla, options):
  monkeypatch.setattr(devices, 'has_gpu', lambda: gpu)
  config = RunConfig(**flags)
  assert use_xla(config.jit_compile) == whole_step_xla
  assert compute_options(config) == options


def test_asking_for_more_gpus_than_present_is_refused():
  count = len(tf.config.list_physical_devices('GPU'))  # 0 here, 1 or more on a GPU machine
  with pytest.raises(UserError, match=f'--num_gpus={count + 2} but this machine shows {count}'):
    make_strategy(num_gpus=count + 2)


def test_every_gpu_grows_its_memory_so_training_and_evaluation_share_it(monkeypatch):
  gpus = ['GPU:0', 'GPU:1']
  grown = []
  monkeypatch.setattr(tf.config, 'list_physical_devices',
                      lambda kind=None: gpus if kind == 'GPU' else [])
  monkeypatch.setattr(tf.config.experimental, 'set_memory_growth',
                      lambda gpu, on: grown.append((gpu, on)))
  devices.share_gpus()
  assert grown == [('GPU:0', True), ('GPU:1', True)]
