"""Shared fixtures; keeps TensorFlow quiet and small on the 2-core CI machine."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Two pytest processes and their experiment.py children share a GPU: each takes what it uses.
os.environ.setdefault('TF_FORCE_GPU_ALLOW_GROWTH', 'true')

import fcntl  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import typing  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# The oracle comparisons hold to 1e-5 in float32; TF32 (on by default on Ampere/Hopper GPUs)
# moves the logits by about 1e-4. The CLI runs that compare with the oracle pass --notf32.
tf.config.experimental.enable_tensor_float_32_execution(False)

ORACLE_DIR = pathlib.Path(__file__).parent / 'testdata' / 'a_valid_routing3'

# The files that take longest (15 s to two minutes of one CPU each), longest first. --dist loadfile
# hands whole files to the two pytest processes in collection order (setup.cfg turns off
# xdist's own order, by number of tests): a long file handed out last is the suite's tail,
# the other process idle meanwhile. A file not listed keeps its place after these.
LONGEST_FIRST = ('test_reliability.py', 'test_multi_worker.py', 'test_gpu_check.py',
                 'test_data_stream.py', 'test_long_runs.py', 'test_experiment.py',
                 'test_own_data.py', 'test_training.py', 'test_errors.py', 'test_fast_paths.py')


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: else as collected


@pytest.fixture(scope='session', autouse=True)
def fork_server():
  """The server experiment.py's runs fork from (tests/cli.py), started with the session's
  environment, before any test changes it."""
  from tests import cli  # pylint: disable=g-import-not-at-top
  cli.start_fork_server()


@pytest.fixture(scope='session')
def oracle():
  """The original code's recorded inputs and outputs (see tests/testdata/a_valid_routing3)."""
  return dict(np.load(ORACLE_DIR / 'io.npz'))


def standardize(image):
  """tf.image.per_image_standardization, by hand: the oracle for the CIFAR-10 and NORB tests."""
  return (image - image.mean()) / max(image.std(), 1 / np.sqrt(image.size))


BASELINE_ORACLE_DIR = pathlib.Path(__file__).parent / 'testdata' / 'f_baseline'


@pytest.fixture(scope='session')
def baseline_oracle():
  """The original baseline's recorded inputs and outputs (see tests/testdata/f_baseline)."""
  return dict(np.load(BASELINE_ORACLE_DIR / 'io.npz'))


def write_idx(path, array) -> None:
  """Writes uint8 images [N, H, W] or labels [N] as an IDX file; gzipped when `path` ends in
  .gz (with mtime 0: the same arrays give the same bytes)."""
  array = np.asarray(array)
  if array.ndim not in (1, 3) or array.dtype != np.uint8:
    raise ValueError(f'expected uint8 [N] or [N, H, W] for {path}, got {array.dtype} '
                     f'{array.shape}')
  data = (bytes([0, 0, 8, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
          + np.ascontiguousarray(array).tobytes())
  with open(path, 'wb') as f:
    f.write(gzip.compress(data, mtime=0) if path.endswith('.gz') else data)


def write_raw_mnist(directory, images, labels, source='train', gz=True) -> str:
  """Raw MNIST IDX files of `source` ('train' or 'test') under MNIST's names, gzipped or plain,
  as `python -m input_data.download` leaves them; returns the directory."""
  from input_data.datasets import MNIST_IDX  # pylint: disable=g-import-not-at-top
  os.makedirs(directory, exist_ok=True)
  suffix = '.gz' if gz else ''
  images_name, labels_name = MNIST_IDX[source]
  write_idx(os.path.join(directory, images_name + suffix), images)
  write_idx(os.path.join(directory, labels_name + suffix), labels)
  return str(directory)


@pytest.fixture
def launch():
  """Starts `python experiment.py ARGS` in the background (tests.cli.Background, `env`: extra
  environment variables); when the test ends, what still runs is killed, and output files go."""
  from tests import cli  # pylint: disable=g-import-not-at-top
  started = []

  def start(*args, env=None):
    started.append(cli.Background(*args, env=env))
    return started[-1]

  yield start
  for process in started:
    process.close()


class TrainedRun(typing.NamedTuple):
  dir: pathlib.Path  # the run directory (--summary_dir)
  args: list  # the flags that trained it
  first: object  # the CompletedProcess of each training run
  second: object

  def copy_to(self, target: pathlib.Path) -> 'TrainedRun':
    """This run copied to `target`, its flags pointing there: for tests that write into it."""
    shutil.copytree(self.dir, target)
    args = [f'--summary_dir={target}' if a.startswith('--summary_dir=') else a for a in self.args]
    return self._replace(dir=target, args=args)


def built_once(tmp_path_factory, name, build):
  """What build(folder) returns (JSON), built once per test session in a folder `name`: the
  first pytest-xdist worker that asks builds it, the others wait and read it (each worker's
  session fixtures are its own: without this, each would train the same run again)."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    root = root.parent  # shared by the workers of this session
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    result = root / f'{name}.json'
    if not result.exists():
      if (root / name).exists():
        raise RuntimeError(f'{name} failed in another pytest worker: see its first error')
      (root / name).mkdir()
      result.write_text(json.dumps(build(root / name)))
    return root / name, json.loads(result.read_text())


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
  """A data dir of the oracle's 8 real-format MNIST records (tests.cli.tiny_mnist_dir)."""
  from tests import cli  # pylint: disable=g-import-not-at-top
  return cli.tiny_mnist_dir(tmp_path_factory.mktemp('tiny_data'))


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
  """The tiny model trained 4 steps on a copy of tiny_data (checkpoints at 2 and 4), then rerun
  to 6 (a resume), both in one process; each batch is all 8 digits. Shared by several test files
  on either pytest worker, so trained once (built_once): copy it (`.copy_to(dir)`) before
  writing into it."""
  from tests import cli  # pylint: disable=g-import-not-at-top

  def train(folder):
    data, run_dir = cli.tiny_mnist_dir(folder / 'data'), folder / 'run'
    args = [f'--data_dir={data}', f'--summary_dir={run_dir}', cli.TINY, '--batch_size=8',
            '--save_step=2', '--log_every=1', '--seed=3']
    runs = cli.run_in_one_process([[*args, '--max_steps=4'], [*args, '--max_steps=6']],
                                  check=True)
    return {'args': args, 'runs': [vars(done) for done in runs]}

  folder, built = built_once(tmp_path_factory, 'tiny_run', train)
  first, second = (subprocess.CompletedProcess(**done) for done in built['runs'])
  return TrainedRun(folder / 'run', built['args'], first, second)


@pytest.fixture(scope='session')
def deterministic_trained(tmp_path_factory):
  """(run directory, flags) of 12 steps with --seed=7 --deterministic, one step per call,
  checkpoints at 6 and 12: the reference that other loop sizes, device counts and runs must
  reproduce (built_once: one training for every pytest worker)."""
  from tests import cli  # pylint: disable=g-import-not-at-top

  def train(folder):
    args = [f'--data_dir={cli.tiny_mnist_dir(folder / "data")}', cli.TINY, '--batch_size=4',
            '--seed=7', '--deterministic', '--distort=false', '--log_every=1', '--save_step=6']
    cli.run(*args, f'--summary_dir={folder}/run', '--max_steps=12')
    return args

  folder, args = built_once(tmp_path_factory, 'deterministic_run', train)
  return folder / 'run', args


@pytest.fixture(scope='session')
def deterministic_run(deterministic_trained):
  """(flags, losses per step) of deterministic_trained."""
  from tests import cli  # pylint: disable=g-import-not-at-top
  run_dir, args = deterministic_trained
  return args, cli.scalars(run_dir / 'train')['loss/total']
