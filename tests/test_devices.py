"""Device choices: who writes in a multi-machine run, XLA and conv per device, GPU counts, a
GPU machine without GPU TensorFlow, XLA's CUDA folder, TF32."""

import os
import sys
import types

import pytest
import tensorflow as tf

from configs import RunConfig, UserError
from models import ComputeOptions
from runner import devices
from runner.devices import (GPU_INSTALL, compute_options, is_chief, make_strategy,
                            point_xla_at_cuda, set_precision, use_xla)
from tests import cli


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
  with pytest.raises(UserError, match=f'--num_gpus={count + 2} but TensorFlow sees {count}'):
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


def test_num_gpus_0_hides_every_gpu_so_the_run_is_on_the_cpu(monkeypatch):
  """Even where TensorFlow sees GPUs and a driver: none is used or grown, XLA and conv are the
  CPU's, and the missing-GPU-libraries stop does not apply."""
  visible = {'GPU': ['GPU:0', 'GPU:1']}
  grown = []
  monkeypatch.setattr(tf.config, 'list_physical_devices',
                      lambda kind=None: ['GPU:0', 'GPU:1'] if kind == 'GPU' else [])
  monkeypatch.setattr(tf.config, 'get_visible_devices', lambda kind=None: visible[kind])
  monkeypatch.setattr(tf.config, 'set_visible_devices',
                      lambda chosen, kind: visible.update({kind: chosen}))
  monkeypatch.setattr(tf.config.experimental, 'set_memory_growth',
                      lambda gpu, on: grown.append(gpu))
  monkeypatch.setattr(devices, 'has_nvidia_driver', lambda: True)
  monkeypatch.setattr(devices, 'point_xla_at_cuda', lambda: None)
  assert devices.has_gpu() and compute_options(RunConfig()) == ComputeOptions('conv', True)
  devices.prepare_devices(allow_cpu=False, num_gpus=0)
  assert visible['GPU'] == [] and grown == [] and not devices.has_gpu()
  assert compute_options(RunConfig(num_gpus=0)) == ComputeOptions('matmul', True)
  assert not use_xla(None)


def test_num_gpus_0_after_the_gpus_started_says_how_to_hide_them(monkeypatch):
  def started(chosen, kind):
    raise RuntimeError('Visible devices cannot be modified after being initialized')
  monkeypatch.setattr(tf.config, 'set_visible_devices', started)
  with pytest.raises(UserError, match=r'^--num_gpus=0: TensorFlow started the GPUs already; '
                     r'hide them before it does \(CUDA_VISIBLE_DEVICES= python experiment'):
    devices.hide_gpus()


def fake_nvidia_driver(folder) -> dict:
  """Environment variables under which a stub nvidia-smi in `folder` fakes an NVIDIA driver."""
  stub = folder / 'nvidia-smi'
  stub.write_text('#!/bin/sh\necho "nvidia-smi: a stub, no GPU"\n')
  stub.chmod(0o755)
  return dict(cli.ENV, PATH=f'{folder}{os.pathsep}{os.environ["PATH"]}')


@pytest.mark.skipif(bool(tf.config.list_physical_devices('GPU')), reason='TensorFlow sees a GPU')
def test_a_driver_without_gpu_tensorflow_stops_with_the_install_command(tiny_data, tmp_path):
  """With --allow_cpu the same machine trains: tests/test_gpu_check.py's quickstart section."""
  done = cli.run_command(
      [sys.executable, str(cli.ROOT / 'experiment.py'), f'--data_dir={tiny_data}', cli.TINY,
       f'--summary_dir={tmp_path}/run', '--max_steps=2'],
      env=fake_nvidia_driver(tmp_path), check=False)
  assert done.returncode == 2 and 'Traceback' not in done.stderr
  errors = [line for line in done.stderr.splitlines() if line.startswith('error:')]
  assert errors == [f'error: this machine has an NVIDIA driver but TensorFlow sees no GPU (its '
                    f'CUDA libraries are not installed): run {GPU_INSTALL}, or pass --allow_cpu '
                    'to run on the CPU anyway']
  assert not list((tmp_path / 'run' / 'train').glob('model.ckpt-*'))


def test_xla_finds_ptxas_and_libdevice_in_the_pip_cuda_wheel(tmp_path):
  site = tmp_path / 'site-packages'
  (site / 'nvidia' / 'cuda_nvcc' / 'nvvm' / 'libdevice').mkdir(parents=True)
  folder = str(site / 'nvidia' / 'cuda_nvcc')
  environ = {'XLA_FLAGS': '--xla_dump_to=/tmp/x'}
  assert point_xla_at_cuda(environ, [str(tmp_path / 'elsewhere'), str(site)]) == folder
  assert environ['XLA_FLAGS'] == f'--xla_dump_to=/tmp/x --xla_gpu_cuda_data_dir={folder}'
  mine = {'XLA_FLAGS': '--xla_gpu_cuda_data_dir=/opt/cuda'}  # the user's own choice stays
  assert point_xla_at_cuda(mine, [str(site)]) is None
  assert mine == {'XLA_FLAGS': '--xla_gpu_cuda_data_dir=/opt/cuda'}
  nothing = {}
  assert point_xla_at_cuda(nothing, [str(tmp_path / 'elsewhere')]) is None and nothing == {}


@pytest.mark.parametrize('flags, tf32', [
    ({}, True),  # TensorFlow's own default on Ampere/Hopper: speed
    ({'deterministic': True, 'seed': 1}, False),
    ({'tf32': False}, False),
    ({'deterministic': True, 'seed': 1, 'tf32': True}, True),  # asked for explicitly
])
def test_tf32_is_on_by_default_and_off_with_deterministic_or_notf32(flags, tf32):
  config = RunConfig(**flags)
  assert config.use_tf32 == tf32
  try:
    set_precision('none', seed=config.seed, tf32=config.use_tf32)
    assert tf.config.experimental.tensor_float_32_execution_enabled() == tf32
  finally:
    tf.config.experimental.enable_tensor_float_32_execution(False)  # as conftest leaves it
