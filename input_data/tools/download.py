"""Downloads the raw MNIST, Fashion-MNIST and CIFAR-10 files, checksummed, with retries:
docs/data_other.md "The download helper"."""

import dataclasses
import hashlib
import os
import tarfile
import time
from typing import Callable, List, Optional

from absl import flags
from absl import logging
import keras

from configs.errors import UserError
from input_data import DataError
from input_data.tools import cli

BASE_URL_ENV = 'CAPSULES_DOWNLOAD_BASE_URL'


@dataclasses.dataclass(frozen=True)
class RemoteFile:
  name: str
  file_hash: str  # 64 hex digits: sha256; 32: MD5
  extract: bool = False


SOURCES = {  # dataset: (base URL, files)
    # yann.lecun.com refuses most downloads now; this is the mirror TensorFlow's tutorials used.
    'mnist': ('https://storage.googleapis.com/cvdf-datasets/mnist/', (
        RemoteFile('train-images-idx3-ubyte.gz',
                   '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609'),
        RemoteFile('train-labels-idx1-ubyte.gz',
                   '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c'),
        RemoteFile('t10k-images-idx3-ubyte.gz',
                   '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6'),
        RemoteFile('t10k-labels-idx1-ubyte.gz',
                   'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6'),
    )),
    'fashion_mnist': ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/', (
        RemoteFile('train-images-idx3-ubyte.gz', '8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
        RemoteFile('train-labels-idx1-ubyte.gz', '25c81989df183df01b3e8a0aad5dffbe'),
        RemoteFile('t10k-images-idx3-ubyte.gz', 'bef4ecab320f06d8554ea6380940ec79'),
        RemoteFile('t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310'),
    )),
    'cifar10': ('https://www.cs.toronto.edu/~kriz/', (
        RemoteFile('cifar-10-binary.tar.gz',
                   'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd',
                   extract=True),
    )),
}


def file_digest(path: str, algorithm: str) -> str:
  digest = hashlib.new(algorithm)
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def fetch(remote: RemoteFile, base_url: str, output_dir: str, *, attempts: int = 4,
          backoff_s: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> str:
  """Downloads one file into `output_dir` unless there already; returns its path. Network
  failures are tried `attempts` times, waiting backoff_s, 2 * backoff_s, ...; a bad checksum
  removes the file and raises DataError."""
  url = base_url.rstrip('/') + '/' + remote.name
  output_dir = os.path.abspath(output_dir)
  algorithm = 'sha256' if len(remote.file_hash) == 64 else 'md5'
  for attempt in range(1, attempts + 1):
    try:
      return keras.utils.get_file(remote.name, url, file_hash=remote.file_hash,
                                  hash_algorithm=algorithm, cache_dir=output_dir,
                                  cache_subdir=output_dir)
    except ValueError as e:  # get_file's checksum failure; the file stays behind
      path = os.path.join(output_dir, remote.name)
      actual = file_digest(path, algorithm) if os.path.exists(path) else None
      if actual in (None, remote.file_hash):
        raise
      os.remove(path)
      raise DataError(f'{remote.name} from {url} failed its {algorithm} check: expected '
                      f'{remote.file_hash}, got {actual}; the file was removed') from e
    except Exception as e:  # pylint: disable=broad-except; get_file raises bare Exception
      if attempt == attempts:
        raise DataError(f'could not download {url} after {attempts} attempts: {e}') from e
      wait = backoff_s * 2 ** (attempt - 1)
      logging.warning('download of %s failed (%s); retrying in %.1f s', url, e, wait)
      sleep(wait)
  raise AssertionError('unreachable')


def extract(archive: str, output_dir: str):
  """Extracts a tar archive into `output_dir`, refusing members that would land outside it
  (tarfile's 'data' filter where Python has it)."""
  root = os.path.realpath(output_dir)
  try:
    with tarfile.open(archive) as tar:
      if hasattr(tarfile, 'data_filter'):
        tar.extractall(output_dir, filter='data')
        return
      for member in tar.getmembers():
        target = os.path.realpath(os.path.join(root, member.name))
        if not (member.isfile() or member.isdir()) or os.path.commonpath([root, target]) != root:
          raise tarfile.TarError(f'unsafe member {member.name!r} (a link, device or a path '
                                 f'outside {output_dir})')
      tar.extractall(output_dir)
  except (tarfile.TarError, OSError) as e:
    raise DataError(f'cannot extract {archive}: {e}') from None


def download(dataset: str, output_dir: str, base_url: Optional[str] = None,
             **fetch_options) -> List[str]:
  """Fetches (and extracts) a dataset's files into `output_dir`; returns the file paths."""
  if dataset not in SOURCES:
    raise UserError(f'unknown dataset {dataset!r} to download; expected one of: '
                    f'{", ".join(sorted(SOURCES))}')
  default_url, files = SOURCES[dataset]
  base_url = base_url or os.environ.get(BASE_URL_ENV) or default_url
  os.makedirs(output_dir, exist_ok=True)
  paths = []
  for remote in files:
    path = fetch(remote, base_url, output_dir, **fetch_options)
    if remote.extract:
      extract(path, output_dir)
    logging.info('%s: ok', path)
    paths.append(path)
  return paths


def _define_flags(values: flags.FlagValues):
  flags.DEFINE_enum('dataset', None, sorted(SOURCES), 'what to download', flag_values=values)
  flags.DEFINE_string('output_dir', None, 'where the files are written', flag_values=values)
  flags.DEFINE_string('base_url', None, f'mirror to fetch from instead (or ${BASE_URL_ENV})',
                      flag_values=values)
  flags.DEFINE_integer('attempts', 4, 'tries per file on network errors', flag_values=values)
  flags.mark_flags_as_required(['dataset', 'output_dir'], flag_values=values)


def main(argv):
  """CLI: python -m input_data.download --dataset=NAME --output_dir=DIR [--base_url=URL]."""
  cli.run(argv, _define_flags,
          lambda f: download(f.dataset, f.output_dir, f.base_url, attempts=f.attempts))
