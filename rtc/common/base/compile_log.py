"""Where a process's JAX time goes: one line per traced, lowered and
compiled program.

With `RTC_COMPILE_LOG=<dir>` set, every process that turns the compilation
cache on (rtc.common.base.cache) appends to `<dir>/<pid>.tsv`, tab-separated:
Bazel's test target (`TEST_TARGET`, or -), the process id, seconds since
the log began, what happened (`trace`, `lower`, `miss`: compiled by XLA,
`hit`: loaded from the persistent cache), the function's name, and its
seconds. Traces nest (a jit inside a jit is traced inside its caller), so
their seconds overlap. docs/testing.md has what it showed for the tests.
"""

import os
import threading
import time

from jax import monitoring

ENV = 'RTC_COMPILE_LOG'
_EVENTS = {'/jax/core/compile/jaxpr_trace_duration': 'trace',
           '/jax/core/compile/jaxpr_to_mlir_module_duration': 'lower',
           '/jax/core/compile/backend_compile_duration': 'compile'}
_installed = []


def install(log_dir: str) -> str:
  """Starts logging this process's programs; returns its file."""
  path = os.path.join(log_dir, f'{os.getpid()}.tsv')
  if _installed:
    return path
  _installed.append(path)
  os.makedirs(log_dir, exist_ok=True)
  target = os.environ.get('TEST_TARGET', '-')
  hit = threading.local()
  lock = threading.Lock()
  start = time.time()

  def on_event(event, **kwargs):
    del kwargs
    if event == '/jax/compilation_cache/cache_hits':
      hit.value = True

  def on_duration(event, duration, **kwargs):
    kind = _EVENTS.get(event)
    if kind is None:
      return
    if kind == 'compile':
      kind = 'hit' if getattr(hit, 'value', False) else 'miss'
      hit.value = False
    line = (f'{target}\t{os.getpid()}\t{time.time() - start:.2f}\t{kind}\t'
            f'{kwargs.get("fun_name", "?")}\t{duration:.4f}\n')
    with lock, open(path, 'a') as f:
      f.write(line)

  monitoring.register_event_listener(on_event)
  monitoring.register_event_duration_secs_listener(on_duration)
  return path
