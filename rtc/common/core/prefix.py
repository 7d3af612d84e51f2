"""Prefix weights: how strongly each position of a new chunk follows the previous one.

`prefix_weights(start, end, total, schedule)` (DESIGN §1) returns `w` of length
`total`:

* `start` is the inference delay d: positions `< start` were executed while the
  new chunk was being computed, so they are fully constrained (weight 1).
* `end` is H - s (s the execution horizon): positions `>= end` have no
  counterpart in the previous chunk and get weight 0.
* If `end < start`, `start` is lowered to `end`.

Schedules between `start` and `end`: `ones` (1), `zeros` (0: hard masking),
`linear` (falls linearly so that position `end` would be 0) and `exp`
(the linear value u mapped to u * (e^u - 1) / (e - 1)).

`start` and `end` may be traced JAX values, so an evaluation sweep over delays
and horizons compiles once; `schedule` is a Python string.
"""

import math

import jax
import jax.numpy as jnp

SCHEDULES = ('ones', 'zeros', 'linear', 'exp')


def check_schedule(schedule: str) -> str:
  """Returns `schedule` if it is known, else raises ValueError."""
  if schedule not in SCHEDULES:
    raise ValueError(
        f'Unknown prefix attention schedule {schedule!r}; expected one of '
        f'{", ".join(SCHEDULES)}.')
  return schedule


def prefix_weights(start, end, total: int, schedule: str) -> jax.Array:
  """Per-position weights [total] for the prefix of a new chunk (DESIGN §1)."""
  check_schedule(schedule)
  idx = jnp.arange(total)
  start = jnp.minimum(start, end)
  if schedule == 'ones':
    w = jnp.ones(total, jnp.float32)
  elif schedule == 'zeros':
    w = (idx < start).astype(jnp.float32)
  else:
    w = jnp.clip((start - 1 - idx) / (end - start + 1) + 1, 0.0, 1.0)
    if schedule == 'exp':
      # Exactly 1 where u = 1 (float rounding would give 0.99999994).
      w = jnp.where(w >= 1.0, 1.0, w * jnp.expm1(w) / (math.e - 1))
  return jnp.where(idx >= end, 0.0, w).astype(jnp.float32)


def sample_delays(rng, batch: int, max_delay: int) -> jax.Array:
  """Training-time RTC's delays: d in {0..max_delay-1}, p(d) ~ e^-d."""
  logits = -jnp.arange(max_delay, dtype=jnp.float32)
  return jax.random.categorical(rng, logits, shape=(batch,))
