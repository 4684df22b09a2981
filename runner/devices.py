"""Devices and numerics of a run: distribution strategy, mixed precision, determinism."""


import keras
import tensorflow as tf
from absl import logging

from configs.errors import UserError
from configs.run_config import PRECISIONS, RunConfig
from models import ComputeOptions
from runner import cluster


def share_gpus():
  """Lets training and an evaluation beside it share one GPU: each process takes the memory it
  uses, growing as needed, instead of TensorFlow's default of nearly all of it at start."""
  for gpu in tf.config.list_physical_devices('GPU'):
    try:
      tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # this process already started the GPU: too late, and already set
      pass


def make_strategy(num_gpus: int = 1, cpu_replicas: int = 0, worker_timeout_secs: int = 600,
                  cluster_kind: str = 'auto', slurm_port_base=None) -> tf.distribute.Strategy:
  """MultiWorkerMirrored in a cluster (TF_CONFIG or SLURM: runner/cluster.py), Mirrored over
  several GPUs (or logical CPUs), else default.

  The global batch is split over the replicas, like the original's GPU towers. Between
  machines, a collective that waits `worker_timeout_secs` for a worker fails, so a dead worker
  never leaves the others waiting forever.
  """
  resolver = cluster.resolver(cluster_kind, slurm_port_base)
  if resolver:
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=worker_timeout_secs)
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver,
                                                     communication_options=options)
  if cpu_replicas > 1:
    return tf.distribute.MirroredStrategy(split_cpu(cpu_replicas))
  gpus = tf.config.list_physical_devices('GPU')
  if num_gpus > max(len(gpus), 1):
    raise UserError(f'--num_gpus={num_gpus} but this machine shows {len(gpus)} GPU(s); '
                    f'use --num_gpus={len(gpus) or 1} (or --cpu_replicas=N to test on the CPU)')
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
  return bool(tf.config.list_physical_devices('GPU'))


def use_xla(jit_compile) -> bool:
  """Whole-step XLA: --jit_compile, by default on GPUs only (on CPUs it ran 20x slower)."""
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


def set_precision(mixed_precision: str, deterministic: bool = False, seed=None):
  """Sets the Keras dtype policy; seeds and makes ops deterministic when asked."""
  keras.mixed_precision.set_dtype_policy(PRECISIONS[mixed_precision])
  if seed is not None:
    keras.utils.set_random_seed(seed)
  if deterministic:
    tf.config.experimental.enable_op_determinism()
  logging.info('precision policy %s%s', PRECISIONS[mixed_precision],
               ', deterministic ops' if deterministic else '')
