"""Timing helpers for rtc's benchmark targets (wall clock, compiled code)."""

import statistics
import time

import jax


def time_fn(fn, *args, repeats: int = 5, min_seconds: float = 0.0) -> float:
  """Median wall time (s) of `fn(*args)` after one warm-up (compile) call."""
  jax.block_until_ready(fn(*args))
  times = []
  start = time.perf_counter()
  while len(times) < repeats or time.perf_counter() - start < min_seconds:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
    if len(times) >= 1000:
      break
  return statistics.median(times)


def fmt(seconds: float) -> str:
  if seconds < 1e-3:
    return f'{seconds * 1e6:.0f} us'
  if seconds < 1.0:
    return f'{seconds * 1e3:.1f} ms'
  return f'{seconds:.2f} s'


def table(rows, headers) -> str:
  """A Markdown table."""
  cols = [headers] + [[str(c) for c in r] for r in rows]
  widths = [max(len(r[i]) for r in cols) for i in range(len(headers))]
  line = lambda r: '| ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths)) + ' |'
  out = [line(headers), '|' + '|'.join('-' * (w + 2) for w in widths) + '|']
  out += [line(r) for r in cols[1:]]
  return '\n'.join(out)


def interleaved(fns, repeats: int) -> dict:
  """{name: median wall time (s)} of `fns` = {name: (fn, args)}, timed in
  rounds (one call of each per round, after one warm-up call each), so load
  on a shared machine falls on every function alike."""
  for fn, args in fns.values():
    jax.block_until_ready(fn(*args))
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, (fn, args) in fns.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[name].append(time.perf_counter() - t0)
  return {name: statistics.median(t) for name, t in times.items()}
