"""A run directory has one writer: a second training is refused, a dead one's lock taken over."""

import datetime
import json
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from configs import UserError
from runner.run_lock import LOCK_FILE, RunLock
from tests import cli


def write_lock(directory, host, pid, age_secs=0, token='theirs'):
  """A lock file as another training would have left it, its heartbeat `age_secs` old."""
  stamp = (datetime.datetime.now(datetime.timezone.utc)
           - datetime.timedelta(seconds=age_secs)).isoformat(timespec='seconds')
  temp = directory / f'{LOCK_FILE}.{token}'  # written whole, then renamed, as RunLock does
  temp.write_text(json.dumps(
      {'host': host, 'pid': pid, 'started': stamp, 'heartbeat': stamp, 'token': token}))
  temp.replace(directory / LOCK_FILE)


def holder(directory):
  return json.loads((directory / LOCK_FILE).read_text())


def test_a_stale_lock_is_taken_over_with_a_warning_naming_the_dead_holder(tmp_path, caplog):
  write_lock(tmp_path, 'node-that-died', 4242, age_secs=3600)
  with RunLock(str(tmp_path)):
    assert holder(tmp_path)['pid'] != 4242
  assert 'host node-that-died, pid 4242' in caplog.text
  assert 'no heartbeat for more than 600s' in caplog.text
  assert not (tmp_path / LOCK_FILE).exists()  # released


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path, caplog):
  dead = subprocess.Popen(['true'])
  dead.wait()
  write_lock(tmp_path, socket.gethostname(), dead.pid)
  with RunLock(str(tmp_path)):
    assert holder(tmp_path)['pid'] != dead.pid
  assert f'pid {dead.pid}' in caplog.text and 'its process is gone' in caplog.text


def test_a_live_holder_on_another_host_is_named_in_the_refusal(tmp_path):
  write_lock(tmp_path, 'node7', 4242, age_secs=20)
  with pytest.raises(UserError, match=r'another training is writing .*: host node7, pid 4242, '
                     r'since \S+ \(last heartbeat 2\ds ago\); .* if you know that training is '
                     r'dead, as in a container that was removed, delete .*/run.lock\)$'):
    RunLock(str(tmp_path)).acquire()
  assert holder(tmp_path)['token'] == 'theirs'


def test_the_heartbeat_refreshes_the_lock_and_notices_a_takeover(tmp_path):
  lock = RunLock(str(tmp_path), heartbeat_secs=0.05)
  with lock:
    mine = holder(tmp_path)
    write_lock(tmp_path, mine['host'], mine['pid'], age_secs=3600, token=mine['token'])
    an_hour_ago = holder(tmp_path)['heartbeat']
    time.sleep(0.3)
    assert holder(tmp_path)['heartbeat'] > an_hour_ago  # refreshed
    write_lock(tmp_path, 'node7', 4242, token='theirs')  # taken over meanwhile
    time.sleep(0.3)
    with pytest.raises(UserError, match='taken over by another training .*host node7'):
      lock.check()
  assert holder(tmp_path)['token'] == 'theirs'  # not removed on release


def test_a_garbled_lock_file_is_rewritten_by_the_heartbeat_not_taken_for_a_takeover(tmp_path):
  lock = RunLock(str(tmp_path), heartbeat_secs=0.05)
  with lock:
    (tmp_path / LOCK_FILE).write_text('{"host": "no')  # cut short, as a reader may find it
    time.sleep(0.3)
    lock.check()
    assert holder(tmp_path)['token'] == lock.holder['token']
  assert not (tmp_path / LOCK_FILE).exists()


def _weights(path):
  reader = tf.train.load_checkpoint(str(path))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if name.startswith(('model/', 'optimizer/'))}


def test_a_second_training_of_one_directory_is_refused_and_the_first_is_unaffected(
    deterministic_trained, tmp_path, launch):
  reference, args = deterministic_trained
  args = [*args, f'--summary_dir={tmp_path}', '--max_steps=6']
  first = launch(*args)
  first.wait_for('holding the run lock')
  first.send_signal(signal.SIGSTOP)  # mid-run, holding the lock, until SIGCONT
  try:
    second = cli.run(*args, check=False)
  finally:
    first.send_signal(signal.SIGCONT)
  errors = [l for l in second.stderr.splitlines() if l.startswith('error:')]
  assert second.returncode == 2 and 'Traceback' not in second.stderr, second.stderr[-2000:]
  assert len(errors) == 1
  assert (f'another training is writing {tmp_path}/train: host {socket.gethostname()}, '
          f'pid {first.process.pid}, since ') in errors[0]
  code, _, stderr = first.finish()
  assert code == 0, stderr[-2000:]
  expected = _weights(reference / 'train' / 'model.ckpt-6')
  got = _weights(tmp_path / 'train' / 'model.ckpt-6')
  assert expected.keys() == got.keys() and len(got) > 10
  for name, value in expected.items():
    np.testing.assert_array_equal(got[name], value, err_msg=name)
  assert len(list((tmp_path / 'train').glob('events.*'))) == 1
  assert not (tmp_path / 'train' / LOCK_FILE).exists()
