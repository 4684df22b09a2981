"""Runs experiment.py (and the project's other commands) as a user would, and reads the events.

Every launcher here is bounded: a hung child fails its test instead of hanging CI.

experiment.py and `python -m MODULE` run in a child of a fork server that has imported
TensorFlow but not started it (multiprocessing's forkserver, preloaded): the child is a process
of its own, with its own environment, arguments, exit status, signals and output, as the command
is, without a TensorFlow import of several seconds for each of the suite's hundred runs.
run_command (python -c, other programs) starts a fresh interpreter, as do the benchmarks' own
child processes.
"""

import contextlib
import gc
import importlib
import io
import json
import logging as python_logging
import multiprocessing
import os
import pathlib
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from tests.conftest import ORACLE_DIR

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = '--hparams_override=conv1_filters=8,num_prime_capsules=2'
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')


def run_command(command, timeout=300, check=True, env=None):
  """Runs `command` (a list) in the checkout; the CompletedProcess, stdout and stderr as text."""
  done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                        env=env or ENV, cwd=ROOT, check=False)
  if check and done.returncode:
    raise AssertionError(f'{" ".join(command[1:3])} exit {done.returncode}:\n'
                         f'{done.stderr[-3000:]}')
  return done


_FORK = multiprocessing.get_context('forkserver')
_FORK.set_forkserver_preload(['experiment', 'runner', 'tests.cli'])


def with_tiny_defaults(args):
  """ARGS, plus --jit_compile=false where they run the TINY model and leave it unset: XLA's
  compile of the routing costs such a run more than it computes (1.4 s of each start on 2 AVX2
  cores, a fifth of the suite). Runs without TINY keep the default, XLA routing."""
  args = [str(a) for a in args]
  if any(a.startswith(TINY) for a in args) and not any(a.startswith('--jit_compile') for a in args):
    return [*args, '--jit_compile=false']
  return args


def start_fork_server():
  """Starts the fork server now (with this environment), not inside the first test that runs."""
  from multiprocessing import forkserver  # pylint: disable=g-import-not-at-top
  forkserver.ensure_running()


def _forked_main(args, env, out, err, module, cases, collect_at_exit=False):
  """The child: `python experiment.py ARGS`, `python -m MODULE ARGS` or, with `cases` (their
  argument lists and a setup), _run_cases; its stdout and stderr into the files `out` and
  `err`. A forked child ends without the interpreter's last garbage collection (and what
  objects' finalizers print then): `collect_at_exit` runs one."""
  os.environ.clear()
  os.environ.update(env)
  tempfile.tempdir = None  # the server's TMPDIR was cached at its start
  os.chdir(ROOT)
  for fd, path in ((1, out), (2, err)):
    with open(path, 'wb') as f:
      os.dup2(f.fileno(), fd)
  signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
  sys.argv = [str(ROOT / 'experiment.py'), *args]
  code = 0
  try:
    if cases:
      _run_cases(*cases)
    elif module:
      runpy.run_module(module, run_name='__main__', alter_sys=True)
    else:
      runpy.run_path(sys.argv[0], run_name='__main__')  # its imports are the server's, done
  except SystemExit as e:
    if not collect_at_exit:
      raise
    code = e.code
  if collect_at_exit:
    gc.collect()
  sys.exit(code)


class Forked:
  """`python experiment.py ARGS` (or `python -m MODULE ARGS`) as a child of the fork server,
  with Popen's interface."""

  def __init__(self, args, env=None, module=None, cases=None, collect_at_exit=False):
    self.args = with_tiny_defaults(args) if module is None else [str(a) for a in args]
    folder = tempfile.mkdtemp(prefix='forked-')
    self._out, self._err = os.path.join(folder, 'stdout'), os.path.join(folder, 'stderr')
    for path in (self._out, self._err):
      open(path, 'w').close()
    self._final = None  # (stdout, stderr) once ended and read
    self._process = _FORK.Process(target=_forked_main, args=(
        self.args, dict(ENV, **(env or {})), self._out, self._err, module, cases,
        collect_at_exit))
    self._process.start()
    self.pid = self._process.pid

  @property
  def returncode(self):
    return self._process.exitcode

  def poll(self):
    return self._process.exitcode

  def wait(self, timeout=None):
    self._process.join(timeout)
    if self._process.exitcode is None:
      raise subprocess.TimeoutExpired(['experiment.py', *self.args], timeout)
    return self._process.exitcode

  def send_signal(self, signum):
    os.kill(self.pid, signum)

  def kill(self):
    self._process.kill()

  def remove_output(self):
    shutil.rmtree(os.path.dirname(self._out), ignore_errors=True)

  def output(self):
    """(stdout, stderr) written so far."""
    return self._final or tuple(pathlib.Path(p).read_text(errors='replace')
                                for p in (self._out, self._err))

  def completed(self, timeout, check):
    """The CompletedProcess once it ended (killed after `timeout` seconds)."""
    try:
      self.wait(timeout)
    except subprocess.TimeoutExpired:
      self.kill()
      self.wait(30)
      raise
    self._final = out, err = self.output()
    self.remove_output()
    if check and self.returncode:
      raise AssertionError(f'{" ".join(self.args[:2])} exit {self.returncode}:\n'
                           f'{err[-3000:]}')
    return subprocess.CompletedProcess(self.args, self.returncode, out, err)


def run(*args, timeout=300, check=True, collect_at_exit=False):
  """`python experiment.py ARGS`; returns the CompletedProcess (stdout and stderr as text).
  `collect_at_exit`: the interpreter's last garbage collection too (see _forked_main)."""
  return Forked(args, collect_at_exit=collect_at_exit).completed(timeout, check)


def run_module(module, *args, timeout=300, check=False):
  """`python -m MODULE ARGS` (benchmarks.throughput, input_data.norb, ...)."""
  return Forked(args, module=module).completed(timeout, check)


def assert_one_error_line(done: subprocess.CompletedProcess, expected: str) -> str:
  """A command that failed as bad input should: exit 2, no traceback, one `error:` line holding
  `expected`, and nothing after it. Returns that line."""
  lines = [l for l in done.stderr.splitlines() if l.startswith('error:')]
  assert done.returncode == 2, done.stderr[-2000:]
  assert len(lines) == 1 and 'Traceback' not in done.stderr, done.stderr[-2000:]
  assert expected in lines[0]
  assert done.stderr.strip().splitlines()[-1] == lines[0], done.stderr[-2000:]  # nothing after
  return lines[0]


def train_and_evaluate(*args, predictions_out) -> dict:
  """Trains with ARGS, then evaluates the last checkpoint (--train=false) into predictions_out,
  in one process; checks the original's stdout line against the predictions and returns them."""
  _, done = run_in_one_process([args, [*args, '--train=false',
                                       f'--predictions_out={predictions_out}']], check=True)
  predictions = dict(np.load(predictions_out))
  total = len(predictions['labels'])
  wrong = int(np.sum(predictions['logits'].argmax(1) != predictions['labels'].argmax(1)))
  assert f'Total wrong predictions: {wrong}, wrong percent: {100 * wrong / total}%\n' in done.stdout
  return predictions


class Background:
  """`python experiment.py ARGS` running beside the test."""

  def __init__(self, *args, env=None):
    self.process = Forked(args, env)

  @property
  def stderr(self) -> str:
    return self.process.output()[1]

  def wait_for(self, text: str, timeout=120):
    """Returns once `text` appeared on stderr; fails if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while text not in self.stderr:
      assert self.process.poll() is None, f'ended before {text!r}:\n{self.stderr[-2000:]}'
      assert time.monotonic() < deadline, f'no {text!r} in {timeout}s:\n{self.stderr[-2000:]}'
      time.sleep(0.05)

  def finish(self, timeout=120):
    """(exit status, stdout, stderr) once it ended; kills it after `timeout` seconds."""
    try:
      done = self.process.completed(timeout, check=False)
    except subprocess.TimeoutExpired:
      raise AssertionError(f'still running after {timeout}s:\n{self.stderr[-2000:]}') from None
    return done.returncode, done.stdout, done.stderr

  def send_signal(self, signum):
    self.process.send_signal(signum)

  def kill(self):
    if self.process.poll() is None:
      self.process.kill()
      self.process.wait(timeout=30)

  def close(self):
    """Kills it if it still runs and removes its output files."""
    self.kill()
    self.process.remove_output()


def tiny_mnist_dir(path: pathlib.Path) -> pathlib.Path:
  """A data dir whose train and test files are the oracle's 8 real-format MNIST records."""
  path.mkdir(parents=True, exist_ok=True)
  for name in ('train_2shifted_mnist.tfrecords', 'test_0shifted_mnist.tfrecords'):
    shutil.copy(ORACLE_DIR / 'test_0shifted_mnist.tfrecords', path / name)
  return path


def _events(directory):
  events = event_accumulator.EventAccumulator(str(directory), size_guidance={'tensors': 0})
  events.Reload()
  return events


def scalars(directory) -> dict:
  """tag -> [(step, value)] from the event files in `directory`, read by TensorBoard itself."""
  events = _events(directory)
  result = {}
  for tag in events.Tags()['tensors']:
    values = [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
    if values and values[0][1].ndim == 0:
      result[tag] = [(step, float(value)) for step, value in values]
  return result


def images(directory, tag):
  """The last image summary `tag` in `directory`'s events, decoded: [height, width, channels]."""
  last = tensor_util.make_ndarray(_events(directory).Tensors(tag)[-1].tensor_proto)
  return tf.io.decode_png(last[2]).numpy()  # [width, height, png, png, ...]


def histogram_counts(directory) -> dict:
  """tag -> how many values the last histogram summary `tag` in `directory` counted."""
  events = _events(directory)
  counts = {}
  for tag in events.Tags()['tensors']:
    last = tensor_util.make_ndarray(events.Tensors(tag)[-1].tensor_proto)
    if last.ndim == 2 and last.shape[1] == 3:  # buckets of (left edge, right edge, count)
      counts[tag] = int(round(last[:, 2].sum()))
  return counts


def tags(directory) -> set:
  return set(_events(directory).Tags()['tensors'])


def hparams_experiment(directory):
  """The HParams plugin's experiment (hparams and metrics) written in `directory`."""
  content = _events(directory).SummaryMetadata('_hparams_/experiment').plugin_data.content
  return plugin_data_pb2.HParamsPluginData.FromString(content).experiment


# Loads SavedModels with TensorFlow alone (the project must not be importable) and writes what
# each one's serving_default returns for its IMAGES.npy, and its metadata, to OUT.npz.
_SERVE = """
import importlib.util, json, sys
import numpy as np, tensorflow as tf
assert importlib.util.find_spec('runner') is None, 'the project is importable'
for export_dir, images, out in zip(*[iter(sys.argv[1:])] * 3):
  model = tf.saved_model.load(export_dir)
  outputs = model.signatures['serving_default'](images=tf.constant(np.load(images)))
  np.savez(out, metadata=model.metadata.numpy(),
           class_names=np.array(model.class_names.numpy(), dtype=bytes),
           **{k: v.numpy() for k, v in outputs.items()})
"""


def serve_elsewhere(exports, tmp_path) -> list:
  """What each SavedModel returns for its uint8 images (`exports`: [(export_dir, images)]),
  from one `python -I` in `tmp_path` with no project code on its path; `metadata` parsed."""
  args = []
  for i, (export_dir, images) in enumerate(exports):
    np.save(tmp_path / f'images{i}.npy', images)
    args += [str(export_dir), str(tmp_path / f'images{i}.npy'), str(tmp_path / f'served{i}.npz')]
  done = subprocess.run([sys.executable, '-I', '-c', _SERVE, *args], capture_output=True,
                        text=True, timeout=300, env=ENV, cwd=tmp_path, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  served = [dict(np.load(tmp_path / f'served{i}.npz')) for i in range(len(exports))]
  for outputs in served:
    outputs['metadata'] = json.loads(outputs['metadata'].item())
  return served


def run_in_one_process(cases, timeout=300, env=None, setup='', check=False):
  """Runs experiment.py's main() on each argument list in `cases`, one after another in ONE
  fresh process (TensorFlow starts once, not once per case), exactly as `python experiment.py
  ARGS` runs it but for the process exit. Returns a CompletedProcess per case. `env`: extra
  environment variables.

  `setup`, 'module:function', is called first in that process (to simulate a failure there).
  `check`: every case must exit 0 (as run() checks one).
  """
  cases = [list(map(str, c)) for c in cases]
  done = Forked([], env, cases=(cases, setup)).completed(timeout, check=False)
  if done.returncode:
    raise AssertionError(f'the cases\' process failed:\n{done.stderr[-3000:]}')
  results = [subprocess.CompletedProcess(args, **result)
             for args, result in zip(cases, json.loads(done.stdout.splitlines()[-1]))]
  for result in results if check else ():
    if result.returncode:
      raise AssertionError(f'experiment.py {" ".join(result.args[:2])} exit '
                           f'{result.returncode}:\n{result.stderr[-3000:]}')
  return results


def _run_cases(cases, setup):
  """The other end of run_in_one_process: main() per case, with fresh flags and captured output;
  their results as JSON on stdout."""
  from absl import flags, logging as absl_logging  # pylint: disable=g-import-not-at-top
  import experiment  # pylint: disable=g-import-not-at-top
  if setup:
    module, function = setup.split(':')
    getattr(importlib.import_module(module), function)()
  experiment.define_flags()
  absl_logging.use_absl_handler()  # as app.run does
  results = []
  for args in cases:
    flags.FLAGS.unparse_flags()
    python_logging.getLogger('tensorflow').disabled = False  # as in a new process (see _fail)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      absl_logging.get_absl_handler().python_handler.stream = err  # its log lines too
      try:
        experiment.main(experiment.parse_flags(['experiment.py', *with_tiny_defaults(args)]))
        code = 0
      except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
      except Exception:  # pylint: disable=broad-except
        traceback.print_exc()  # what the interpreter prints for an uncaught exception
        code = 1
    results.append({'returncode': code, 'stdout': out.getvalue(), 'stderr': err.getvalue()})
  print(json.dumps(results))
