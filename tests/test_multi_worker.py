"""Several machines for real: worker processes on 127.0.0.1, each with its own TF_CONFIG or the
environment srun gives each task of a SLURM job step."""

import contextlib
import json
import signal
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

from tests import cli


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def free_port_range(count):
  """The first of `count` consecutive free local ports (SLURM's tasks on a node use base + i)."""
  while True:
    base = free_port()
    try:
      with contextlib.ExitStack() as stack:
        for port in range(base, base + count):
          stack.enter_context(socket.socket()).bind(('127.0.0.1', port))
      return base
    except OSError:
      continue


def start_workers(launch, args, scratch, count=2, cluster='tf_config'):
  """`python experiment.py ARGS` once per worker of a cluster on free local ports: with its own
  TF_CONFIG, or as srun starts the tasks of a SLURM job step on one node."""
  if cluster == 'slurm':
    base = free_port_range(count)
    return [launch(*args, f'--slurm_port_base={base}', env={
        'TMPDIR': str(scratch), 'SLURM_JOB_ID': '4242', 'SLURM_PROCID': str(index),
        'SLURM_STEP_NUM_TASKS': str(count), 'SLURM_STEP_NODELIST': '127.0.0.1',
        'SLURM_STEP_TASKS_PER_NODE': str(count), 'CUDA_VISIBLE_DEVICES': ''})
            for index in range(count)]
  ports = [free_port() for _ in range(count)]
  return [launch(*args, env={'TMPDIR': str(scratch), 'TF_CONFIG': json.dumps(
      {'cluster': {'worker': [f'127.0.0.1:{p}' for p in ports]},
       'task': {'type': 'worker', 'index': index}})}) for index in range(count)]


def finish(workers, timeout=240):
  """[(exit status, stderr)] of every worker, none allowed to run past `timeout` (the launch
  fixture kills the others); a timeout shows what every worker wrote."""
  try:
    return [(code, err) for code, _, err in (worker.finish(timeout) for worker in workers)]
  except AssertionError as e:
    raise AssertionError('\n'.join([str(e).splitlines()[0]] + [
        f'worker {i}:\n{w.stderr[-1500:]}' for i, w in enumerate(workers)])) from None


def wait_for(path, workers, timeout=180):
  deadline = time.monotonic() + timeout
  while not path.exists():
    assert time.monotonic() < deadline and all(w.process.poll() is None for w in workers), path
    time.sleep(0.2)


@pytest.fixture
def data(tmp_path):
  """One train_2shifted_mnist.tfrecords file as the original's builder writes it: sharding by
  file would leave the second worker without data."""
  return cli.tiny_mnist_dir(tmp_path / 'data')


def train_args(data, run, *more):
  return [f'--data_dir={data}', f'--summary_dir={run}', cli.TINY, '--batch_size=16', '--seed=3',
          '--log_every=1', *more]


def saved(path):
  reader = tf.train.load_checkpoint(str(path))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(('model/', 'optimizer/')) and 'iteration' not in k}


@pytest.mark.parametrize('cluster, resumed', [('tf_config', False), ('slurm', True)],
                         ids=['tf_config', 'slurm_stopped_and_resumed'])
def test_two_workers_train_as_one_process_and_only_the_chief_writes(deterministic_trained,
                                                                    tmp_path, launch, cluster,
                                                                    resumed):
  """deterministic_trained's first 6 steps (one process) again, over two workers."""
  one_dir, args = deterministic_trained  # its data: one file (sharding by file would starve one)
  scratch = tmp_path / 'scratch'
  scratch.mkdir()
  args = [*args, f'--summary_dir={tmp_path / "two"}', '--max_steps=6']
  if resumed:  # stopped after step 3 and rerun: the data stream reads on
    first = finish(start_workers(launch, [*args, '--max_steps=3'], scratch, cluster=cluster))
    assert [code for code, _ in first] == [0, 0], first[1][1][-3000:]
  results = finish(start_workers(launch, args, scratch, cluster=cluster))
  assert [code for code, _ in results] == [0, 0], results[1][1][-3000:]
  two, one = saved(tmp_path / 'two/train/model.ckpt-6'), saved(one_dir / 'train/model.ckpt-6')
  assert two.keys() == one.keys() and len(one) > 10
  for name, value in one.items():  # the same global batches, split over the workers
    np.testing.assert_allclose(two[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
  losses = cli.scalars(tmp_path / 'two' / 'train')['loss/total']
  np.testing.assert_allclose([v for _, v in losses],
                             [v for _, v in cli.scalars(one_dir / 'train')['loss/total'][:6]],
                             rtol=1e-5)
  written = sorted(p.name for p in (tmp_path / 'two').rglob('*') if p.is_file())
  # train/'s (one per start) and the HParams one
  assert len([n for n in written if n.startswith('events.')]) == 2 + resumed
  checkpoints = [3, 6] if resumed else [6]
  assert [n for n in written if not n.startswith('events.')] == sorted(
      ['checkpoint', 'run_config.json'] + [f'model.ckpt-{s}{suffix}' for s in checkpoints
                                           for suffix in ('.index', '.data-00000-of-00001')])
  # The other worker's scratch checkpoints are gone (TensorFlow's autograph may leave its own
  # temporary modules in TMPDIR: not ours to remove).
  assert not list(scratch.glob('capsules-worker-*'))


def test_a_preempted_then_a_dead_worker_each_stop_the_cluster_and_each_rerun_resumes(
    data, tmp_path, launch):
  """SIGTERM to one worker (a preemption): all save the same step and exit 143 to be requeued.
  The requeued job resumes there; when one of its workers dies, the chief stops within
  --worker_timeout_secs with one line, and the next rerun resumes from the last checkpoint."""
  run = tmp_path / 'run'
  args = train_args(data, run, '--max_steps=100000', '--save_step=2', '--worker_timeout_secs=20')
  workers = start_workers(launch, args, tmp_path)
  wait_for(run / 'train' / 'model.ckpt-4.index', workers)
  workers[1].send_signal(signal.SIGTERM)
  results = finish(workers)
  assert [code for code, _ in results] == [143, 143], results[0][1][-3000:]
  steps = {int(line.split('at step ')[1].split(';')[0]) for _, err in results
           for line in err.splitlines() if 'stopped by signal 15 at step' in line}
  assert len(steps) == 1  # the same step on every worker
  step = steps.pop()
  assert (run / 'train' / f'model.ckpt-{step}.index').exists()

  workers = start_workers(launch, args, tmp_path)
  wait_for(run / 'train' / f'model.ckpt-{step + 2 + step % 2}.index', workers)
  workers[1].kill()
  killed = time.monotonic()
  (chief_code, chief_err), _ = finish(workers, timeout=60)
  assert time.monotonic() - killed < 40  # bounded by --worker_timeout_secs, not forever
  assert f'resumed from {run}/train/model.ckpt-{step} at step {step}' in chief_err
  errors = [l for l in chief_err.splitlines() if l.startswith('error:')]
  assert chief_code == 75 and len(errors) == 1, chief_err[-3000:]
  assert 'lost contact with another worker after step' in errors[0]
  latest = tf.train.latest_checkpoint(str(run / 'train'))
  assert f'last complete checkpoint ({latest})' in errors[0]
  step = int(latest.rsplit('-', 1)[1])

  rerun = finish(start_workers(launch, train_args(data, run, f'--max_steps={step + 1}'),
                               tmp_path))
  assert [code for code, _ in rerun] == [0, 0]
  assert f'resumed from {latest} at step {step}' in rerun[0][1]
