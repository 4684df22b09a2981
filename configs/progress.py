"""The one progress reporter of long loops (training, evaluation, data builders): rate and ETA
from wall-clock time, and resident memory."""

import datetime
import resource
import time


def resident_mb() -> float:
  """This process's resident memory now, MB (Linux /proc; 0 where unavailable)."""
  try:
    with open('/proc/self/statm') as f:
      return int(f.read().split()[1]) * resource.getpagesize() / 2**20
  except OSError:
    return 0.0


class Progress:
  """Units done (steps, images, records) towards `total`: rate between reports, ETA."""

  def __init__(self, total: int, done: int = 0):
    self.total = total
    self._start_done, self._start_time = done, time.monotonic()
    self._last_done, self._last_time = done, self._start_time

  def due(self, every_seconds: float) -> bool:
    """Whether `every_seconds` have passed since the last rate() (for time-based reports)."""
    return time.monotonic() - self._last_time >= every_seconds

  def rate(self, done: int) -> float:
    """Units per second since the previous call (or since the start)."""
    now = time.monotonic()
    elapsed = max(now - self._last_time, 1e-9)
    rate = (done - self._last_done) / elapsed
    self._last_done, self._last_time = done, now
    return rate

  def eta(self, done: int) -> str:
    elapsed = time.monotonic() - self._start_time
    per_unit = elapsed / max(done - self._start_done, 1)
    return str(datetime.timedelta(seconds=round(per_unit * max(self.total - done, 0))))
