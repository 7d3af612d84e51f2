"""Keeps two kinds of harmless start-up noise out of binaries' output.

* JAX probes every backend it knows at start-up; one that is not installed
  (TPU without libtpu) is logged at INFO, "Unable to initialize backend
  'tpu': ...", which kinetix-env's logging set-up prints. `install_filters`
  drops those INFO records (a backend that was asked for and fails still
  raises).
* XLA:CPU logs two error-level lines for every program it loads from the
  persistent compilation cache: "Loading XLA:CPU AOT result. Target machine
  feature +prefer-no-scatter (+prefer-no-gather) is not supported on the host
  machine ... could lead to execution errors such as SIGILL". The mismatch is
  not real (docs/errors.md): the two are LLVM tuning preferences, not
  instruction-set features, which the host's feature list never holds; every
  instruction-set feature of the compiled entries is present on the host,
  and the entries load and run (openxla/xla#44565, jax-ml/jax#38445). They
  are C++ log lines, so `filter_stderr` routes file descriptor 2 through a
  small child process that drops exactly those lines: an entry compiled for
  a missing instruction-set feature (e.g. +avx512f) is still reported.

`RTC_FULL_LOG=1` turns both off.
"""

import logging
import os
import sys

FULL_LOG_ENV = 'RTC_FULL_LOG'
BACKEND_PROBE = 'Unable to initialize backend'
# Only the tuning preferences; any other feature's line passes.
TUNING_ONLY = (r'Loading XLA:CPU AOT result\. Target machine feature '
               r'\+prefer-no-(?:scatter|gather) is not')

_FILTER = f"""
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
drop = re.compile({TUNING_ONLY.encode()!r})
out = sys.stdout.buffer
for line in sys.stdin.buffer:
  if not drop.search(line):
    out.write(line)
    out.flush()
"""

_filtered = False


GRAIN_WARNING = 'Grain multiprocess worker profiling requires'


class _DropGrainWarning(logging.Filter):
  """Grain (it comes with kinetix and is not used here) warns at import
  that this jaxlib lacks its profiling support."""

  def filter(self, record):
    return not str(record.msg).startswith(GRAIN_WARNING)


class _DropBackendProbe(logging.Filter):

  def filter(self, record):
    return not (record.levelno <= logging.INFO and
                str(record.msg).startswith(BACKEND_PROBE))


def _enabled() -> bool:
  return os.environ.get(FULL_LOG_ENV, '') in ('', '0')


def install_filters() -> None:
  """Drops JAX's backend-probe INFO records and Grain's import-time note
  (idempotent). rtc.common.env.envs calls it before Kinetix loads Grain."""
  if not _enabled():
    return
  for name, kind in (('jax._src.xla_bridge', _DropBackendProbe),
                     ('absl', _DropGrainWarning)):
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
      logger.addFilter(kind())


def filter_stderr() -> None:
  """Routes fd 2 through a child that drops the tuning-only XLA:CPU cache
  lines. Call once, early in a binary's process (before any compilation);
  the child ends when this process closes its stderr (exit or death)."""
  global _filtered
  if _filtered or not _enabled():
    return
  try:
    sys.stderr.flush()
    read, write = os.pipe()  # Both close on exec.
    err = os.dup(2)
    # Not subprocess.Popen: its object would warn when collected while the
    # child (which outlives every Python object here) still runs.
    os.posix_spawn(sys.executable, [sys.executable, '-c', _FILTER],
                   os.environ, file_actions=[
                       (os.POSIX_SPAWN_DUP2, read, 0),
                       (os.POSIX_SPAWN_DUP2, err, 1),
                       (os.POSIX_SPAWN_DUP2, err, 2)])
    os.dup2(write, 2)
    for fd in (read, write, err):
      os.close(fd)
  except OSError:
    return  # Unfiltered output is better than none.
  _filtered = True
