"""On-disk caches shared by binaries, tests and benchmarks.

* JAX's persistent compilation cache: a Kinetix step costs 10-20 s to compile
  on a 2-core CPU; with the cache a later run loads the executable instead.
* Parsed level files: kinetix-env builds a level from JSON with thousands of
  small eager JAX ops (about 2.5 s per large level); the parsed state is kept,
  keyed by the file's contents and the kinetix-env version.

The root is `$RTC_CACHE_DIR` if set, else `~/.cache/rtc` (or
`/tmp/rtc-cache-<uid>` where there is no writable home, as under
`bazel test`). `RTC_CACHE_DIR=off` disables both. Only programs that took
at least `$RTC_CACHE_MIN_COMPILE_SECS` (default 0.5) to compile are kept.
"""

import os

import jax

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
  return path
