"""Which cluster this process is one worker of: TF_CONFIG (by hand, or Kubeflow's TFJob),
SLURM's job step (`srun`), or none. Resolved with TensorFlow's own cluster resolvers."""

import os
from typing import Optional

import tensorflow as tf

from configs.errors import UserError
from configs.machine import visible_gpus

# What srun sets for every task of a job step, and what the resolver reads of it.
SLURM_VARIABLES = ('SLURM_PROCID', 'SLURM_STEP_NUM_TASKS', 'SLURM_STEP_NODELIST',
                   'SLURM_STEP_TASKS_PER_NODE')
# Ports a job's tasks on one node use: base, base + 1, ... (one per task on the node).
_PORTS_PER_JOB = 8
_FIRST_PORT, _LAST_PORT = 10000, 60000


def kind(cluster: str) -> str:
  """'tf_config', 'slurm' or 'none': --cluster, or for 'auto' what the environment shows
  (TF_CONFIG first; a SLURM job step of more than one task)."""
  if cluster != 'auto':
    return cluster
  if os.environ.get('TF_CONFIG'):
    return 'tf_config'
  if os.environ.get('SLURM_STEP_NUM_TASKS', '1').strip() not in ('', '0', '1'):
    return 'slurm'
  return 'none'


def resolver(cluster: str, port_base: Optional[int] = None):
  """The cluster resolver for --cluster, or None when this process runs alone."""
  chosen = kind(cluster)
  if chosen == 'tf_config':
    if not os.environ.get('TF_CONFIG'):
      raise UserError('--cluster=tf_config but TF_CONFIG is not set; set it on every worker '
                      '(docs/cluster.md) or use --cluster=auto')
    return tf.distribute.cluster_resolver.TFConfigClusterResolver()
  if chosen == 'slurm':
    return slurm_resolver(port_base)
  return None


def slurm_resolver(port_base: Optional[int] = None):
  """TensorFlow's SlurmClusterResolver for this job step: one worker per task, the first port
  `port_base` (default: from SLURM_JOB_ID), each task's share of its node's GPUs.

  A node's GPUs are split over its tasks (one task per GPU, or one task with all of them);
  where SLURM already bound each task to its own GPUs, they are left as they are.
  """
  per_node = _check_slurm(os.environ)
  if port_base is None:
    port_base = default_port_base(os.environ.get('SLURM_JOB_ID', '0'))
  gpus = visible_gpus()
  listed = os.environ.get('CUDA_VISIBLE_DEVICES')
  if gpus >= per_node:  # this task sees the node's GPUs: give each task its share
    per_task, assign = gpus // per_node, True
  else:  # SLURM bound this task to its GPUs (or there are none)
    per_task, assign = gpus, False
  try:
    slurm = tf.distribute.cluster_resolver.SlurmClusterResolver(
        port_base=port_base, gpus_per_node=max(per_task, 1) * per_node,
        gpus_per_task=max(per_task, 1), auto_set_gpu=assign and per_task > 0)
    spec = slurm.cluster_spec()
  except (RuntimeError, ValueError) as e:
    raise UserError(f'the SLURM job step cannot be read as a cluster: {e}') from None
  if listed and assign:  # the resolver numbers GPUs from 0: map back to the devices listed
    names = listed.split(',')
    os.environ['CUDA_VISIBLE_DEVICES'] = ','.join(
        names[int(i)] for i in os.environ['CUDA_VISIBLE_DEVICES'].split(','))
  return tf.distribute.cluster_resolver.SimpleClusterResolver(
      spec, task_type=slurm.task_type, task_id=slurm.task_id, rpc_layer='grpc',
      num_accelerators={'GPU': per_task})


def _check_slurm(environ) -> int:
  """The most tasks on one node of the step, or a UserError naming the variable that
  is missing or does not fit the others."""
  missing = [name for name in SLURM_VARIABLES if not environ.get(name)]
  if missing:
    raise UserError(f'{missing[0]} is not set: a SLURM cluster needs {", ".join(SLURM_VARIABLES)}'
                    ' (srun sets them for each task; start experiment.py with srun)')
  numbers = {}
  for name in ('SLURM_PROCID', 'SLURM_STEP_NUM_TASKS'):
    try:
      numbers[name] = int(environ[name])
    except ValueError:
      raise UserError(f'{name}={environ[name]} is not a number') from None
  rank, tasks = numbers['SLURM_PROCID'], numbers['SLURM_STEP_NUM_TASKS']
  if not 0 <= rank < tasks:
    raise UserError(f'SLURM_PROCID={rank} is not a task of this step: SLURM_STEP_NUM_TASKS='
                    f'{tasks} numbers them 0 to {tasks - 1}')
  per_node = _tasks_per_node(environ['SLURM_STEP_TASKS_PER_NODE'])
  if sum(per_node) != tasks:
    raise UserError(f'SLURM_STEP_TASKS_PER_NODE={environ["SLURM_STEP_TASKS_PER_NODE"]} places '
                    f'{sum(per_node)} tasks, but SLURM_STEP_NUM_TASKS={tasks}')
  return max(per_node)


def _tasks_per_node(value: str):
  """SLURM's tasks-per-node list, '2(x3),1' -> [2, 2, 2, 1]."""
  counts = []
  for part in value.split(','):
    count, _, repeat = part.partition('(x')
    try:
      counts += [int(count)] * int(repeat.rstrip(')') or 1)
    except ValueError:
      raise UserError(f'SLURM_STEP_TASKS_PER_NODE={value} is not a list like 2(x3),1') from None
  return counts


def default_port_base(job_id: str) -> int:
  """The first port of a job's tasks on a node: different for jobs that share a node (each job
  gets _PORTS_PER_JOB ports, by its SLURM_JOB_ID), the same on every node of one job."""
  slots = (_LAST_PORT - _FIRST_PORT) // _PORTS_PER_JOB
  digits = ''.join(c for c in job_id if c.isdigit()) or '0'
  return _FIRST_PORT + int(digits) % slots * _PORTS_PER_JOB
