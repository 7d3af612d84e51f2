"""On-disk caches shared by binaries, tests and benchmarks.

* JAX's persistent compilation cache: a Kinetix step costs 10-20 s to compile
  on a 2-core CPU; with the cache a later run loads the executable instead.
* Parsed level files: kinetix-env builds a level from JSON with thousands of
  small eager JAX ops (about 2.5 s per large level); the parsed state is kept,
  keyed by the file's contents and the kinetix-env version.

The root is `$RTC_CACHE_DIR` if set, else `~/.cache/rtc` (or
`/tmp/rtc-cache-<uid>` where there is no writable home, as under
`bazel test`). `RTC_CACHE_DIR=off` disables both.
"""

import os

import jax


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
  # Every program, also the small eager ones (50-100 ms each to compile
  # here): tests and stages in other processes use the same shapes.
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  return path
