"""Devices and numerics of a run: GPU checks, distribution strategy, mixed precision, TF32,
determinism."""

import os
import shutil
import sys

import keras
import tensorflow as tf
from absl import logging

from configs.errors import UserError
from configs.machine import GPU_INSTALL, has_nvidia_driver
from configs.run_config import PRECISIONS, RunConfig
from models import ComputeOptions


def prepare_devices(allow_cpu: bool = False, num_gpus: int = 1):
  """Before TensorFlow starts a device: memory growth, XLA's CUDA folder, and a stop when a
  machine with an NVIDIA driver shows TensorFlow no GPU (unless --allow_cpu); num_gpus=0 hides
  every GPU, so the run is on the CPU."""
  point_xla_at_cuda()
  if num_gpus == 0:
    hide_gpus()
    return
  share_gpus()
  if not allow_cpu and has_nvidia_driver() and not has_gpu():
    raise UserError('this machine has an NVIDIA driver but TensorFlow sees no GPU (its CUDA '
                    f'libraries are not installed): run {GPU_INSTALL}, or pass --allow_cpu to '
                    'run on the CPU anyway')


def cuda_data_dir(search_path=None):
  """The folder of pip's CUDA compiler wheel (nvidia/cuda_nvcc: ptxas, nvvm/libdevice) on the
  Python path, or None."""
  for root in sys.path if search_path is None else search_path:
    folder = os.path.join(root, 'nvidia', 'cuda_nvcc')
    if os.path.isdir(os.path.join(folder, 'nvvm', 'libdevice')):
      return folder
  return None


def point_xla_at_cuda(environ=os.environ, search_path=None):
  """Adds --xla_gpu_cuda_data_dir=<cuda_data_dir()> to XLA_FLAGS, so that XLA finds ptxas and
  libdevice from the pip wheels, unless the user named a folder; returns the folder or None."""
  flags = environ.get('XLA_FLAGS', '')
  if '--xla_gpu_cuda_data_dir' in flags:
    return None
  folder = cuda_data_dir(search_path)
  if folder:
    environ['XLA_FLAGS'] = f'{flags} --xla_gpu_cuda_data_dir={folder}'.strip()
  elif has_gpu() and not shutil.which('ptxas'):
    logging.warning('XLA on this GPU needs ptxas and libdevice: neither pip\'s nvidia-cuda-nvcc '
                    'nor ptxas on PATH was found (%s, or --jit_compile=false)', GPU_INSTALL)
  return folder


def hide_gpus():
  """Leaves TensorFlow only the CPU (--num_gpus=0), say for an evaluation beside a training that
  holds the GPUs."""
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:
    raise UserError('--num_gpus=0: TensorFlow started the GPUs already; hide them before it '
                    'does (CUDA_VISIBLE_DEVICES= python experiment.py ...)') from None


def share_gpus():
  """Lets training and an evaluation beside it share one GPU: each process takes the memory it
  uses, growing as needed, instead of TensorFlow's default of nearly all of it at start."""
  for gpu in tf.config.list_physical_devices('GPU'):
    try:
      tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # this process already started the GPU: too late, and already set
      pass


def make_strategy(num_gpus: int = 1, cpu_replicas: int = 0, worker_timeout_secs: int = 600,
                  resolver=None) -> tf.distribute.Strategy:
  """MultiWorkerMirrored in a cluster (`resolver`, TF_CONFIG's or SLURM's: runner/cluster.py),
  Mirrored over several GPUs (or logical CPUs), else default.

  The global batch is split over the replicas, like the original's GPU towers. Between
  machines, a collective that waits `worker_timeout_secs` for a worker fails, so a dead worker
  never leaves the others waiting forever.
  """
  if resolver:
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=worker_timeout_secs)
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver,
                                                     communication_options=options)
  if cpu_replicas > 1:
    return tf.distribute.MirroredStrategy(split_cpu(cpu_replicas))
  gpus = tf.config.list_physical_devices('GPU')
  if num_gpus > max(len(gpus), 1):
    install = f'; if it has more, install TensorFlow\'s CUDA libraries: {GPU_INSTALL}'
    raise UserError(f'--num_gpus={num_gpus} but TensorFlow sees {len(gpus)} GPU(s) on this '
                    f'machine; use --num_gpus={len(gpus) or 1} (or --cpu_replicas=N to test on '
                    f'the CPU){install}')
  if num_gpus > 1:
    return tf.distribute.MirroredStrategy([f'/gpu:{i}' for i in range(num_gpus)])
  return tf.distribute.get_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's checkpoints and events (always, but on the
  non-chief workers of a multi-machine run)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type:
    return True
  has_chief = 'chief' in resolver.cluster_spec().as_dict()
  return resolver.task_type == 'chief' or (not has_chief and resolver.task_type == 'worker'
                                           and resolver.task_id == 0)


def split_cpu(count: int):
  """Splits the CPU into `count` logical devices (once per process); returns their names."""
  cpu = tf.config.list_physical_devices('CPU')[0]
  configured = tf.config.get_logical_device_configuration(cpu) or []
  if len(configured) != count:
    try:
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
      raise UserError(f'cannot split the CPU into {count} devices after TensorFlow started; '
                      f'it has {max(len(configured), 1)}') from None
  return [d.name for d in tf.config.list_logical_devices('CPU')[:count]]


def has_gpu() -> bool:
  """Whether TensorFlow may compute on a GPU (one it sees and --num_gpus=0 did not hide)."""
  return bool(tf.config.get_visible_devices('GPU'))


def use_xla(jit_compile) -> bool:
  """Whole-step XLA: --jit_compile, by default on GPUs only (CPUs: docs/performance.md)."""
  if jit_compile is None:
    return has_gpu()
  if jit_compile and not has_gpu():
    logging.warning('--jit_compile on a CPU: XLA ran the capsule model far slower than TF '
                    'kernels in benchmarks/throughput.py (the default compiles only the routing)')
  return jit_compile


def compute_options(config: RunConfig) -> ComputeOptions:
  """How the layers compute on this machine: --conv_impl=auto is matmul on CPUs, cuDNN on GPUs;
  routing is compiled with XLA unless --jit_compile=false."""
  conv_impl = config.conv_impl
  if conv_impl == 'auto':
    conv_impl = 'conv' if has_gpu() else 'matmul'
  return ComputeOptions(conv_impl=conv_impl, jit_routing=config.jit_compile is not False)


def set_precision(mixed_precision: str, deterministic: bool = False, seed=None, tf32=True):
  """Sets the Keras dtype policy and TF32 (float32 matmuls and convolutions with 10-bit
  mantissas on Ampere and later GPUs); seeds and makes ops deterministic when asked."""
  keras.mixed_precision.set_dtype_policy(PRECISIONS[mixed_precision])
  tf.config.experimental.enable_tensor_float_32_execution(tf32)
  if seed is not None:
    keras.utils.set_random_seed(seed)
  if deterministic:
    tf.config.experimental.enable_op_determinism()
  logging.info('precision policy %s, TF32 %s%s', PRECISIONS[mixed_precision],
               'on' if tf32 else 'off', ', deterministic ops' if deterministic else '')
