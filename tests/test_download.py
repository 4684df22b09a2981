"""The download helper against a local HTTP server on 127.0.0.1 (never the network)."""

import hashlib
import http.server
import io
import os
import tarfile
import threading

import pytest

from configs.errors import UserError
from input_data import DataError
from input_data.tools import download


class _Server:
  """Serves `files` {name: bytes}; the first `failures` requests of each name get a 503."""

  def __init__(self, files, failures=0):
    self.files, self.failures, self.requests = files, failures, []
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # pylint: disable=invalid-name
        name = self.path.rsplit('/', 1)[-1]
        server.requests.append(name)
        if name not in server.files or server.requests.count(name) <= server.failures:
          self.send_error(404 if name not in server.files else 503)
          return
        self.send_response(200)
        self.send_header('Content-Length', str(len(server.files[name])))
        self.end_headers()
        self.wfile.write(server.files[name])

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/data/'
    threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


@pytest.fixture
def serve(monkeypatch):
  for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'):
    monkeypatch.delenv(var, raising=False)
  monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
  servers = []

  def start(files, failures=0):
    servers.append(_Server(files, failures))
    return servers[-1]

  yield start
  for server in servers:
    server.close()


def _sha256(data):
  return hashlib.sha256(data).hexdigest()


def test_fetch_writes_the_verified_file_and_skips_it_next_time(serve, tmp_path):
  server = serve({'a.bin': b'abc' * 100})
  remote = download.RemoteFile('a.bin', _sha256(b'abc' * 100))
  path = download.fetch(remote, server.url, str(tmp_path))
  assert path == str(tmp_path / 'a.bin') and (tmp_path / 'a.bin').read_bytes() == b'abc' * 100
  download.fetch(remote, server.url, str(tmp_path))
  assert server.requests == ['a.bin']


def test_md5_checksums_are_accepted(serve, tmp_path):
  server = serve({'b.gz': b'fashion'})
  remote = download.RemoteFile('b.gz', hashlib.md5(b'fashion').hexdigest())
  assert open(download.fetch(remote, server.url, str(tmp_path)), 'rb').read() == b'fashion'


def test_checksum_mismatch_names_the_file_and_both_hashes(serve, tmp_path):
  server = serve({'a.bin': b'tampered'})
  expected = _sha256(b'original')
  with pytest.raises(DataError) as error:
    download.fetch(download.RemoteFile('a.bin', expected), server.url, str(tmp_path))
  message = str(error.value)
  assert 'a.bin' in message and expected in message and _sha256(b'tampered') in message
  assert not (tmp_path / 'a.bin').exists()
  assert server.requests == ['a.bin']  # a wrong file is not fetched again


def test_server_failure_is_retried_with_backoff(serve, tmp_path):
  server = serve({'a.bin': b'data'}, failures=2)
  waits = []
  download.fetch(download.RemoteFile('a.bin', _sha256(b'data')), server.url, str(tmp_path),
                 attempts=3, backoff_s=0.5, sleep=waits.append)
  assert waits == [0.5, 1.0] and server.requests == ['a.bin'] * 3
  assert (tmp_path / 'a.bin').read_bytes() == b'data'


def test_gives_up_naming_the_url_after_the_last_attempt(serve, tmp_path):
  server = serve({'a.bin': b'data'}, failures=5)
  with pytest.raises(DataError, match=r'could not download http://127.0.0.1:\d+/data/a.bin '
                                      r'after 2 attempts'):
    download.fetch(download.RemoteFile('a.bin', _sha256(b'data')), server.url, str(tmp_path),
                   attempts=2, sleep=lambda s: None)


def test_cifar10_archive_is_checked_and_extracted(serve, tmp_path, monkeypatch):
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
    info = tarfile.TarInfo('cifar-10-batches-bin/test_batch.bin')
    info.size = 3073
    tar.addfile(info, io.BytesIO(b'\1' * 3073))
  archive = buffer.getvalue()
  monkeypatch.setitem(download.SOURCES, 'cifar10', ('https://unused.invalid/', (
      download.RemoteFile('cifar-10-binary.tar.gz', _sha256(archive), extract=True),)))
  server = serve({'cifar-10-binary.tar.gz': archive})
  monkeypatch.setenv(download.BASE_URL_ENV, server.url)
  download.download('cifar10', str(tmp_path))
  assert (tmp_path / 'cifar-10-batches-bin' / 'test_batch.bin').read_bytes() == b'\1' * 3073


@pytest.mark.parametrize('python_filter', [True, False])
def test_archive_members_outside_the_output_dir_are_refused(tmp_path, monkeypatch,
                                                            python_filter):
  if not python_filter:  # the check used by Pythons older than 3.11.4
    monkeypatch.delattr(tarfile, 'data_filter', raising=False)
  elif not hasattr(tarfile, 'data_filter'):
    pytest.skip('this Python has no tarfile data filter')
  archive = tmp_path / 'evil.tar'
  with tarfile.open(archive, mode='w') as tar:
    info = tarfile.TarInfo('../outside.bin')
    info.size = 4
    tar.addfile(info, io.BytesIO(b'evil'))
  with pytest.raises(DataError, match=r'cannot extract .*evil.tar'):
    download.extract(str(archive), str(tmp_path / 'out'))
  assert not (tmp_path / 'outside.bin').exists()


def test_cli_takes_the_base_url_flag_and_reports_a_bad_file_in_one_line(serve, tmp_path, capsys):
  server = serve({name: b'not mnist' for name in (
      'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz')})
  with pytest.raises(SystemExit) as exit_:
    download.main(['download', '--dataset=mnist', f'--output_dir={tmp_path}',
                   f'--base_url={server.url}'])
  assert exit_.value.code == 2
  (error,) = [l for l in capsys.readouterr().err.splitlines() if l.startswith('error:')]
  _, files = download.SOURCES['mnist']
  assert f'expected {files[0].file_hash}, got {_sha256(b"not mnist")}' in error
  assert os.listdir(tmp_path) == []


def test_unknown_dataset_lists_the_known_ones(tmp_path):
  with pytest.raises(UserError, match='cifar10, fashion_mnist, mnist'):
    download.download('svhn', str(tmp_path))


@pytest.mark.parametrize('argv, expected', [
    (['download', '--dataset=svhn', '--output_dir=x'],
     'error: flag --dataset=svhn: value should be one of <cifar10|fashion_mnist|mnist>'),
    (['affnist'], 'error: flag --mat_dir=None: Flag --mat_dir must have a value other than None.; '
     'flag --output_dir=None: Flag --output_dir must have a value other than None.'),
    (['download', '--flagfile=/nonexistent/flags'], "error: Unable to open flagfile: [Errno 2] "
     "No such file or directory: '/nonexistent/flags'"),
    (['mnist_shift', '--num_workers=0'], 'error: need shift >= 0, pad >= 0, num_pairs >= 1, '
     'max_shard >= 1, num_workers >= 1; got 2, 0, 1000, 100000, 0'),
])
def test_a_data_tools_flag_mistake_is_one_error_line_and_exit_2(argv, expected, capsys):
  """The tools' own flags (input_data/tools/cli.py), not absl's usage text and exit 1."""
  from input_data.tools import affnist, mnist_shift  # pylint: disable=g-import-not-at-top
  main = {'download': download.main, 'affnist': affnist.main, 'mnist_shift': mnist_shift.main}
  with pytest.raises(SystemExit) as exit_:
    main[argv[0]](argv)
  assert exit_.value.code == 2
  assert capsys.readouterr().err.splitlines() == [expected]
