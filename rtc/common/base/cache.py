"""On-disk caches shared by binaries, tests and benchmarks.

* JAX's persistent compilation cache: a Kinetix step costs 10-20 s to compile
  on a 2-core CPU; with the cache a later run loads the executable instead.
* Parsed level files: kinetix-env builds a level from JSON with thousands of
  small eager JAX ops (about 2.5 s per large level); the parsed state is kept,
  keyed by the file's contents and the kinetix-env version.

In a job of several processes (rtc.common.bc.distributed) JAX writes the
compilation cache from process 0 only, and on CPU a program's key holds its
devices, so the other processes' programs were never cached: they compiled
everything on every run. `use_process_cache` gives process i > 0 a cache
directory of its own (`<dir>-process<i>`, beside the shared one), which it
writes itself; process 0 keeps the shared directory.

The root is `$RTC_CACHE_DIR` if set, else `~/.cache/rtc` (or
`/tmp/rtc-cache-<uid>` where there is no writable home, as under
`bazel test`). `RTC_CACHE_DIR=off` disables both. With `RTC_COMPILE_LOG`
set, every program's trace, lowering and compile time is logged
(rtc.common.base.compile_log). Only programs that took
at least `$RTC_CACHE_MIN_COMPILE_SECS` (default 0.5) to compile are kept.
"""

import os

import jax

from rtc.common.base import compile_log

MIN_SECONDS_ENV = 'RTC_CACHE_MIN_COMPILE_SECS'


def cache_root() -> str | None:
  env = os.environ.get('RTC_CACHE_DIR')
  if env:
    return None if env == 'off' else env
  home = os.environ.get('HOME')
  if home and os.path.isdir(home) and os.access(home, os.W_OK):
    return os.path.join(home, '.cache', 'rtc')
  return f'/tmp/rtc-cache-{os.getuid()}'


def cache_dir(kind: str) -> str | None:
  root = cache_root()
  if root is None:
    return None
  path = os.path.join(root, kind)
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None
  return path


def enable_compilation_cache() -> str | None:
  """Turns JAX's persistent compilation cache on; returns its directory."""
  path = cache_dir('jax')
  if path is None:
    return None
  jax.config.update('jax_compilation_cache_dir', path)
  # Programs that took at least this long to compile. The tests set 0
  # (.bazelrc): their processes share many small programs (50-100 ms each
  # to compile here).
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    float(os.environ.get(MIN_SECONDS_ENV, '0.5')))
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  if os.environ.get(compile_log.ENV):
    compile_log.install(os.environ[compile_log.ENV])
  return path


def use_process_cache(process_index: int) -> str | None:
  """Process `process_index` > 0 of a job: its own compilation-cache
  directory, written by it. Call before its first compilation."""
  # pylint: disable=g-import-not-at-top
  from jax._src import compilation_cache
  from jax._src import compiler
  # pylint: enable=g-import-not-at-top
  shared = jax.config.jax_compilation_cache_dir
  if process_index == 0 or not shared:
    return None
  path = f'{shared.rstrip(os.sep)}-process{process_index}'
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None
  jax.config.update('jax_compilation_cache_dir', path)
  compilation_cache.reset_cache()  # Opened at its next use, in `path`.
  if not getattr(compiler._cache_write, 'rtc_every_process', False):  # pylint: disable=protected-access
    compiler._cache_write = _writer(compiler._cache_write)  # pylint: disable=protected-access
  return path


def _writer(jax_write):
  """JAX's cache writer (jax 0.9, compiler._cache_write), but writing in
  every process: each process > 0 owns its directory, so writes never
  contend."""
  # pylint: disable=g-import-not-at-top
  import warnings
  from jax._src import compilation_cache
  # pylint: enable=g-import-not-at-top

  def write(cache_key, compile_time_secs, module_name, backend, executable,
            host_callbacks):
    if jax.process_index() == 0:
      return jax_write(cache_key, compile_time_secs, module_name, backend,
                       executable, host_callbacks)
    if host_callbacks or compile_time_secs < (
        jax.config.jax_persistent_cache_min_compile_time_secs):
      return None
    try:
      compilation_cache.put_executable_and_time(
          cache_key, module_name, executable, backend,
          int(compile_time_secs))
    except Exception as e:  # pylint: disable=broad-except
      warnings.warn(f'Error writing persistent compilation cache entry for '
                    f'{module_name!r}: {type(e).__name__}: {e}')
    return None

  write.rtc_every_process = True
  return write
