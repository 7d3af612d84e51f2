"""Start-up shared by every rtc binary.

* Under `bazel run`, change into the directory the user typed the command in
  (`BUILD_WORKING_DIRECTORY`), so relative paths on the command line (config
  files, run and output directories) mean what the user meant, and outputs
  land in the user's tree, never under bazel-out.
* Turn on the persistent compilation and level caches (rtc.common.cache).
"""

import os
import sys
import time

from absl import app

from rtc.common import cache


def prepare() -> None:
  wd = os.environ.get('BUILD_WORKING_DIRECTORY')
  if wd and os.path.isdir(wd):
    os.chdir(wd)
  cache.enable_compilation_cache()


def run(main) -> None:
  """`absl.app.run(main)` after `prepare()`; errors become one clear line."""
  prepare()

  def wrapped(argv):
    try:
      return main(argv)
    except (FileNotFoundError, ValueError, FloatingPointError) as e:
      # Bad input gets one clear line; the traceback adds nothing for users.
      print(f'error: {e}', file=sys.stderr, flush=True)
      return 2

  app.run(wrapped)


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
    print(self.line(done, extra), flush=True)
