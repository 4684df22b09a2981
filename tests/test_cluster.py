"""Clusters from the environment: SLURM job steps as srun describes them, TF_CONFIG, or none."""

import os
import sys

import pytest

from configs import UserError
from runner import cluster
from tests import cli


def srun_env(procid=0, tasks=2, nodes='127.0.0.1', per_node='2', **more):
  """The variables srun sets for one task of a job step (the ones the resolver reads)."""
  return {'CUDA_VISIBLE_DEVICES': '', 'SLURM_JOB_ID': '77', 'SLURM_PROCID': str(procid), 'SLURM_STEP_NUM_TASKS': str(tasks),
          'SLURM_STEP_NODELIST': nodes, 'SLURM_STEP_TASKS_PER_NODE': per_node, **more}


@pytest.fixture
def environment(monkeypatch):
  """Sets the process environment to `variables` for a test: no SLURM_* or TF_CONFIG but these
  (the resolvers read os.environ; monkeypatch restores it, CUDA_VISIBLE_DEVICES too)."""
  def set_to(variables):
    for name in list(os.environ):
      if name.startswith('SLURM_') or name in ('TF_CONFIG', 'CUDA_VISIBLE_DEVICES'):
        monkeypatch.delenv(name)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')  # registered, so restored after the test
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES')
    for name, value in variables.items():
      monkeypatch.setenv(name, value)
  return set_to


@pytest.mark.parametrize('choice, environ, expected', [
    ('auto', {}, 'none'),
    ('auto', srun_env(tasks=1, per_node='1'), 'none'),  # one task: this machine's GPUs only
    ('auto', srun_env(), 'slurm'),
    ('auto', {'TF_CONFIG': '{}', **srun_env()}, 'tf_config'),  # TF_CONFIG set by hand wins
    ('slurm', {'TF_CONFIG': '{}', **srun_env()}, 'slurm'),
    ('none', srun_env(), 'none'),
])
def test_auto_picks_tf_config_then_a_slurm_step_of_several_tasks(environment, choice, environ,
                                                                 expected):
  environment(environ)
  assert cluster.kind(choice) == expected


def test_slurm_workers_are_the_step_tasks_in_node_order_with_ports_from_the_base(environment):
  environment(srun_env(procid=3, tasks=4, nodes='gpu[07-08]', per_node='2(x2)'))
  resolver = cluster.slurm_resolver(20000)
  assert resolver.cluster_spec().as_dict() == {
      'worker': ['gpu07:20000', 'gpu07:20001', 'gpu08:20000', 'gpu08:20001']}
  assert (resolver.task_type, resolver.task_id) == ('worker', 3)
  assert resolver.num_accelerators() == {'GPU': 0}


@pytest.mark.parametrize('visible, per_node, procid, gpus, assigned', [
    ('0,1,2,3,4,5,6,7', '1', 0, 8, '0,1,2,3,4,5,6,7'),  # one task per node with all its GPUs
    ('0,1,2,3,4,5,6,7', '8', 5, 1, '5'),  # one task per GPU
    ('0,1,2,3', '2', 1, 2, '2,3'),
    ('4,5,6,7', '2', 1, 2, '6,7'),  # the job's GPUs are not the node's first ones
    ('3', '4', 2, 1, '3'),  # SLURM bound each task to its GPU already: left as it is
])
def test_each_slurm_task_gets_its_share_of_the_nodes_gpus(environment, visible, per_node, procid,
                                                          gpus, assigned):
  environment(srun_env(procid=procid, tasks=int(per_node), per_node=per_node,
                       CUDA_VISIBLE_DEVICES=visible))
  resolver = cluster.slurm_resolver(20000)
  assert resolver.num_accelerators() == {'GPU': gpus}
  assert os.environ['CUDA_VISIBLE_DEVICES'] == assigned


@pytest.mark.parametrize('environ, expected', [
    ({k: v for k, v in srun_env().items() if k != 'SLURM_STEP_NODELIST'},
     'SLURM_STEP_NODELIST is not set'),
    ({k: v for k, v in srun_env().items() if k != 'SLURM_PROCID'}, 'SLURM_PROCID is not set'),
    (srun_env(procid=2), 'SLURM_PROCID=2 is not a task of this step: SLURM_STEP_NUM_TASKS=2'),
    (srun_env(procid='one'), 'SLURM_PROCID=one is not a number'),
    (srun_env(per_node='3'), 'SLURM_STEP_TASKS_PER_NODE=3 places 3 tasks, but '
     'SLURM_STEP_NUM_TASKS=2'),
    (srun_env(per_node='x2'), 'SLURM_STEP_TASKS_PER_NODE=x2 is not a list'),
])
def test_an_incomplete_or_inconsistent_slurm_step_names_the_variable(environment, environ,
                                                                     expected):
  environment(environ)
  with pytest.raises(UserError, match=expected.replace('(', r'\(')):
    cluster.slurm_resolver(20000)


def test_tf_config_asked_for_but_missing_is_refused(environment):
  environment({})
  with pytest.raises(UserError, match='--cluster=tf_config but TF_CONFIG is not set'):
    cluster.resolver('tf_config')


def test_jobs_sharing_a_node_get_ports_of_their_own():
  bases = [cluster.default_port_base(str(job)) for job in range(1000, 1100)]
  assert len(set(bases)) == len(bases)  # consecutive jobs: no two alike
  assert all(b2 - b1 >= 8 for b1, b2 in zip(sorted(bases), sorted(bases)[1:]))
  assert all(10000 <= b and b + 8 <= 60000 for b in bases)
  assert cluster.default_port_base('1000') == bases[0]  # every node of a job agrees


def test_a_broken_slurm_step_stops_experiment_with_one_line(tiny_data, tmp_path):
  environ = {k: v for k, v in srun_env().items() if k != 'SLURM_STEP_TASKS_PER_NODE'}
  done = cli.run_command(
      [sys.executable, str(cli.ROOT / 'experiment.py'), f'--data_dir={tiny_data}',
       f'--summary_dir={tmp_path}/run', cli.TINY, '--max_steps=1', '--cluster=slurm'],
      check=False, env={**cli.ENV, **environ})
  errors = [l for l in done.stderr.splitlines() if l.startswith('error:')]
  assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
  assert 'SLURM_STEP_TASKS_PER_NODE is not set' in errors[0]
  assert 'Traceback' not in done.stderr
