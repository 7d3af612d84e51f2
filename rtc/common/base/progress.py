"""Progress lines, and line-atomic writes for jobs that print from threads.

`Progress(total, unit, label).line(done, extra)` is a line with elapsed time
and an estimate of the time left. `write_line(line)` writes the line and its
newline in one call under a lock, so lines printed at once by parallel
branches (the quickstart's) never glue together; `print` writes the text and
the newline separately.
"""

import sys
import threading
import time

_lock = threading.Lock()


def write_line(line: str, stream=None) -> None:
  """`line` + newline in one write (and a flush), under a process-wide lock;
  `stream` defaults to sys.stdout at the time of the call."""
  stream = sys.stdout if stream is None else stream
  with _lock:
    stream.write(f'{line}\n')
    stream.flush()


def format_duration(seconds: float) -> str:
  seconds = max(0, int(round(seconds)))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


class Progress:
  """Progress lines with elapsed time and an estimate of the time left."""

  def __init__(self, total: int, unit: str, label: str = '',
               initial: int = 0):
    self.total = max(int(total), 1)
    self.unit = unit
    self.label = label
    self.initial = initial  # Work done before this session (resumed runs).
    self.start = time.time()

  def line(self, done: int, extra: str = '') -> str:
    elapsed = time.time() - self.start
    rate = (done - self.initial) / elapsed if elapsed > 0 else 0.0
    left = (self.total - done) / rate if rate > 0 else float('nan')
    left_s = format_duration(left) if left == left else '?'
    prefix = f'[{self.label}] ' if self.label else ''
    return (f'{prefix}{done}/{self.total} {self.unit} '
            f'({100.0 * done / self.total:.0f}%), elapsed '
            f'{format_duration(elapsed)}, left ~{left_s}'
            + (f' | {extra}' if extra else ''))

  def print(self, done: int, extra: str = '') -> None:
    write_line(self.line(done, extra))
