"""One writer per run directory: a lock file in train/ naming its holder, kept fresh by a heartbeat.

Made for the shared file systems of clusters (NFS, Lustre), so no fcntl/flock: the lock is
created with os.link (atomic there too) and refreshed by rename. A holder whose heartbeat is
older than STALE_SECS (its node died), or whose process is gone from this host, is taken over.
"""

import datetime
import json
import os
import socket
import threading
import time
import uuid

from absl import logging

from configs.errors import UserError

LOCK_FILE = 'run.lock'
HEARTBEAT_SECS = 30
# Far longer than a checkpoint save or a slow step, so a live run is never taken for dead.
STALE_SECS = 600


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def _age(stamp: str) -> float:
  """Seconds since an ISO time stamp of _now()."""
  return time.time() - datetime.datetime.fromisoformat(stamp).timestamp()


def _read(path: str):
  """The lock's holder, or None when it is gone. A file this code did not write (empty, cut
  short) is judged by its age alone."""
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except ValueError:
    stamp = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    stamp = stamp.isoformat(timespec='seconds')
    return {'host': 'unknown', 'pid': 0, 'started': stamp, 'heartbeat': stamp, 'token': ''}


def _write(path: str, holder: dict):
  with open(path, 'w') as f:
    json.dump(holder, f, indent=2)


def _pid_is_gone(holder: dict) -> bool:
  """True when the holder ran on this host and its process no longer exists."""
  if holder['host'] != socket.gethostname():
    return False
  try:
    os.kill(holder['pid'], 0)
  except ProcessLookupError:
    return True
  except PermissionError:  # another user's process
    pass
  return False


def describe(holder: dict) -> str:
  """Who holds a lock, for messages: host, pid, since when, and the heartbeat's age."""
  return (f'host {holder["host"]}, pid {holder["pid"]}, since {holder["started"]} '
          f'(last heartbeat {_age(holder["heartbeat"]):.0f}s ago)')


class RunLock:
  """Holds `directory`/run.lock while in a `with` block (a no-op when `enabled` is false)."""

  def __init__(self, directory: str, enabled: bool = True, heartbeat_secs=HEARTBEAT_SECS,
               stale_secs=STALE_SECS):
    self.path = os.path.join(directory, LOCK_FILE)
    self.enabled = enabled
    self.heartbeat_secs, self.stale_secs = heartbeat_secs, stale_secs
    self.holder = {'host': socket.gethostname(), 'pid': os.getpid(), 'started': _now(),
                   'heartbeat': _now(), 'token': uuid.uuid4().hex}
    self.lost_to = None  # the holder that took the lock from us, if any
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, daemon=True)

  def __enter__(self):
    if self.enabled:
      self.acquire()
    return self

  def __exit__(self, *_):
    if self.enabled:
      self.release()

  def acquire(self):
    """Creates the lock file, taking over a dead holder's; raises UserError for a live one."""
    while not self._create():
      holder = _read(self.path)
      if holder is None:
        continue  # released meanwhile
      if _pid_is_gone(holder):
        why = 'its process is gone'
      elif _age(holder['heartbeat']) > self.stale_secs:
        why = f'no heartbeat for more than {self.stale_secs}s'
      else:
        raise UserError(f'another training is writing {os.path.dirname(self.path)}: '
                        f'{describe(holder)}; wait for it to end or stop it, or use another '
                        f'--summary_dir (a lock without heartbeat for {self.stale_secs}s is '
                        f'taken over; if you know that training is dead, as in a container '
                        f'that was removed, delete {self.path})')
      logging.warning('taking over the lock %s of a dead training (%s): %s', self.path,
                      describe(holder), why)
      self._move_aside(holder)
    logging.info('holding the run lock %s (host %s, pid %d)', self.path, self.holder['host'],
                 self.holder['pid'])
    self._thread.start()

  def _create(self) -> bool:
    """Links a complete lock file into place; False when one exists."""
    temp = f'{self.path}.{self.holder["token"]}'
    _write(temp, self.holder)
    try:
      os.link(temp, self.path)
      return True
    except FileExistsError:
      return False
    finally:
      os.remove(temp)

  def _move_aside(self, dead: dict):
    """Removes the dead holder's lock; puts back a newer one another run took meanwhile."""
    aside = f'{self.path}.{self.holder["token"]}.old'
    try:
      os.rename(self.path, aside)
    except FileNotFoundError:
      return
    moved = _read(aside)
    if moved and moved['token'] != dead['token']:
      try:
        os.link(aside, self.path)
      except FileExistsError:
        pass
    os.remove(aside)

  def _beat(self):
    """Refreshes the heartbeat until released or until another run took the lock."""
    while not self._stop.wait(self.heartbeat_secs):
      if not self._ours():
        return
      self.holder['heartbeat'] = _now()
      temp = f'{self.path}.{self.holder["token"]}'
      try:
        _write(temp, self.holder)
        os.replace(temp, self.path)
      except OSError as e:  # a full disk: try again at the next beat
        logging.warning('cannot refresh the heartbeat of %s: %s', self.path, e)
      if not self._ours():
        return

  def _ours(self) -> bool:
    """False once another run's lock is in place. A file without a token (garbled, cut short)
    is no run's: a takeover links a complete file, and the next beat replaces this one."""
    current = _read(self.path)
    if current is not None and current['token'] not in ('', self.holder['token']):
      self.lost_to = current
    return current is not None and not self.lost_to

  def check(self):
    """Raises UserError when another run took the lock over (this one looked dead)."""
    if self.lost_to:
      raise UserError(f'the lock {self.path} was taken over by another training '
                      f'({describe(self.lost_to)}) while this one did not refresh it for '
                      f'{self.stale_secs}s; stopped without saving, to leave the run to it')

  def release(self):
    self._stop.set()
    if self._thread.is_alive():
      self._thread.join()
    if self._ours():
      os.remove(self.path)
