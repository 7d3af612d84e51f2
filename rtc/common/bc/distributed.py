"""JAX's multi-controller runtime for rtc's binaries (one job, many processes).

A job of N processes (one per host, or per GPU) runs the same command; each
process calls `initialize(config.distributed)` before touching a device, and
`rtc.common.bc.sharding.LevelSharding` then builds one mesh over every process's
devices. The options (`--config.distributed.*`, configs/common.py):

* `auto=True`: `jax.distributed.initialize()` with no arguments, for clusters
  whose environment JAX detects (SLURM, Open MPI, ...).
* `coordinator_address` (host:port of process 0), `num_processes`,
  `process_id`: an explicit launch (e.g. two hosts started by hand).
* `initialization_timeout_s`: how long processes wait for each other at start;
  `heartbeat_timeout_s`: how long a silent process counts as alive;
  `wait_timeout_s`: how long a process waits for the others before a
  collective (one may still be compiling).

Gloo gives a new group of devices 30 s to connect, so every gather
(`LevelSharding.gather`) and `barrier` first meets the other processes at a
barrier of the coordination service (`align`), which waits up to
`wait_timeout_s`.

None of them set: one process, nothing initialised. On CPU the processes talk
through gloo (`jax_cpu_collectives_implementation`). Importing Kinetix starts
JAX's backend, which must come after `initialize`: rtc.common.bc.train and
rtc.common.bc.evaluate import Kinetix's users inside their functions.

`guard()` wraps a binary's work: in a job of several processes any error ends
this process at once with one line (`error: process i/N: ...`), without
waiting at JAX's shutdown barrier. Before it exits it posts the error in the
coordination service; a watcher thread in every other process reads it and
ends that process with one line naming the failed process. A process that
dies without a word (killed, crashed) is noticed by the next collective
(the connection closes: one line, `lost contact`) or, at the latest, after
`heartbeat_timeout_s`, when JAX's coordination service terminates the
others ("... detected fatal errors ... another task died").
"""

import atexit
import contextlib
import itertools
import os
import sys
import threading
import time

import jax
from jax.experimental import multihost_utils

from rtc.common.base import cache

_EXPLICIT = ('coordinator_address', 'num_processes', 'process_id')
EXIT_CODE = 2


def _get(config, name, default=None):
  if config is None:
    return default
  value = config.get(name, default)
  return default if value is None else value


def wanted(config) -> bool:
  """Whether `config` (the `distributed` options, or None) asks for a job."""
  return bool(_get(config, 'auto', False)) or any(
      _get(config, k) not in (None, '') for k in _EXPLICIT)


def is_initialized() -> bool:
  return jax.distributed.is_initialized()


def initialize(config) -> None:
  """Starts JAX's distributed runtime per `config.distributed`, or nothing."""
  if not wanted(config):
    return
  auto = bool(_get(config, 'auto', False))
  explicit = {k: _get(config, k) for k in _EXPLICIT}
  if auto and any(v not in (None, '') for v in explicit.values()):
    raise ValueError(
        '--config.distributed.auto=True takes its settings from the cluster; '
        'do not also set --config.distributed.coordinator_address / '
        'num_processes / process_id.')
  if not auto:
    missing = [k for k, v in explicit.items() if v in (None, '')]
    if missing:
      raise ValueError(
          'A multi-process job needs all of --config.distributed.'
          'coordinator_address (host:port of process 0), num_processes and '
          f'process_id; missing {", ".join(missing)}.')
    n, pid = int(explicit['num_processes']), int(explicit['process_id'])
    if n < 1 or not 0 <= pid < n:
      raise ValueError(
          f'--config.distributed.process_id={pid} must be in [0, '
          f'num_processes={n}).')
  if is_initialized():
    return  # Already running (e.g. two binaries' work in one process).
  kwargs = dict(
      initialization_timeout=int(_get(config, 'initialization_timeout_s',
                                      300)),
      heartbeat_timeout_seconds=int(_get(config, 'heartbeat_timeout_s', 100)))
  global _wait_ms
  _wait_ms = int(1000 * float(_get(config, 'wait_timeout_s', 3600)))
  if not auto:
    kwargs.update(coordinator_address=str(explicit['coordinator_address']),
                  num_processes=n, process_id=pid)
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  try:
    jax.distributed.initialize(**kwargs)
  except RuntimeError as e:
    raise ValueError(
        f'Could not start the distributed runtime ({str(e).splitlines()[0]}): '
        'it must start before anything uses a device, and every process '
        'needs the same --config.distributed.coordinator_address.') from None
  # Every process caches its own programs (before the first compilation).
  cache.use_process_cache(jax.process_index())
  # A first collective: connects the processes' collectives now, so a peer
  # that dies later is noticed at once by the next collective.
  barrier('rtc: every process started')
  _watcher.start()


STOP_KEY = 'rtc/stop'
POLL_S = 1.0
_exiting = threading.Event()


def _stop_watching() -> None:
  _exiting.set()
  if _watcher.is_alive():
    _watcher.join(timeout=10 * POLL_S)


def _client():
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  return jax_distributed.global_state.client


def _exit(line: str) -> None:
  print(line, file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(EXIT_CODE)  # pylint: disable=protected-access


def _watch() -> None:
  """Ends this process when another posts its error under STOP_KEY.

  Polls (never blocks in the client), so that it stops cleanly at exit."""
  client = _client()
  while not _exiting.wait(POLL_S):
    try:
      message = client.key_value_try_get(STOP_KEY)
    except Exception as e:  # pylint: disable=broad-except
      if _exiting.is_set():
        return
      if 'NOT_FOUND' in str(e) or 'not found' in str(e).lower():
        continue
      _exit(f'error: {_me()}: lost contact with the job\'s coordinator '
            f'(process 0): {str(e).splitlines()[0][:200]}. Restart the whole '
            'job to resume.')
      return
    if not _exiting.is_set():
      _exit(f'error: {_me()}: stopping because {message}')
    return


_watcher = threading.Thread(target=_watch, name='rtc-stop-watcher',
                            daemon=True)
atexit.register(_stop_watching)  # Runs before JAX's own shutdown handler.


def process_index() -> int:
  return jax.process_index()


def process_count() -> int:
  return jax.process_count()


def is_main() -> bool:
  return jax.process_index() == 0


def main_only(log):
  """`log` on process 0, a no-op on the others."""
  return log if is_main() else (lambda _: None)


_wait_ms = 3600_000
_aligned = itertools.count()


def align() -> None:
  """Waits until every process is here (no-op in a one-process run).

  Every process calls the same collectives in the same order, so the n-th
  call of each meets the n-th of the others."""
  if jax.process_count() > 1:
    _client().wait_at_barrier(f'rtc/align/{next(_aligned)}', _wait_ms)


_shared = itertools.count()


def shared_value(make) -> str:
  """`make()` (a str) computed by process 0 and read by every process, e.g.
  a default run name from the clock; one process: `make()`."""
  if jax.process_count() <= 1:
    return make()
  key = f'rtc/shared/{next(_shared)}'
  if is_main():
    value = str(make())
    _client().key_value_set(key, value)
    return value
  return _client().blocking_key_value_get(key, _wait_ms)


def barrier(name: str) -> None:
  """Waits for every process (no-op in a one-process run)."""
  if jax.process_count() > 1:
    align()
    multihost_utils.sync_global_devices(name)


def _is_peer_loss(e: BaseException) -> bool:
  """A runtime error of a collective or barrier: most likely a lost peer."""
  return type(e).__name__ in ('JaxRuntimeError', 'XlaRuntimeError')


def _me() -> str:
  return f'process {jax.process_index()}/{jax.process_count()}'


def describe(e: BaseException) -> str:
  """What went wrong, in one line (without the `error: process i/N:`)."""
  first = (str(e).strip().splitlines() or [type(e).__name__])[0]
  if _is_peer_loss(e):
    return (f'lost contact with another process of the job ({first[:200]}); '
            'it stopped, died or is stuck, see its log. Restart the whole job '
            'with the same --config.run_name / --output_dir to resume.')
  return f'{type(e).__name__}: {first}'


@contextlib.contextmanager
def guard():
  """In a multi-process job, any error ends this process with one line."""
  try:
    yield
  except BaseException as e:  # pylint: disable=broad-except
    if not is_initialized() or jax.process_count() <= 1:
      raise
    if isinstance(e, SystemExit) and not e.code:
      raise
    what = describe(e)
    _exiting.set()  # This process's own watcher stays quiet.
    if _is_peer_loss(e):
      try:  # A peer that failed posted why before its connections closed.
        _exit(f'error: {_me()}: stopping because '
              f'{_client().key_value_try_get(STOP_KEY)}')
      except Exception:  # pylint: disable=broad-except
        pass  # It died without a word.
    try:
      _client().key_value_set(STOP_KEY, f'{_me()} failed: {what}')
      if is_main():  # It hosts the service: let the others read the post.
        time.sleep(3 * POLL_S)
    except Exception:  # pylint: disable=broad-except
      pass  # Already posted by another process, or the service is gone.
    _exit(f'error: {_me()}: {what}')
