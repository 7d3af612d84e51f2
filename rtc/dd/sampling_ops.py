"""Two reductions of DD sampling, chosen per backend.

The DD draw (rtc.dd.model) needs the maximum over the K bins and cumulative
sums over a short axis. On XLA:CPU a reduce-max over 256 bins is several
times slower than pairwise halving (`bazel run //rtc/bench:dd` prints both),
and a triangular matmul of ones has fewer ops than `jnp.cumsum`'s scan, which
matters at batch 1. Elsewhere (GPU) the plain `jnp.max` / `jnp.cumsum` are
used: nothing was measured there yet (tools/gpu_check.sh times `action` on
both when a GPU is at hand).

The choice is made when a function is traced, from `jax.default_backend()`;
`RTC_DD_SAMPLING_OPS=cpu` or `=plain` forces one (for measurements), and
`use(...)` forces one inside a block (tests).
"""

import contextlib
import os

import jax
import jax.numpy as jnp

ENV = 'RTC_DD_SAMPLING_OPS'
CHOICES = ('cpu', 'plain')
_forced = None


def cpu_tuned() -> bool:
  """Whether the XLA:CPU-tuned forms are used for what is traced now."""
  choice = _forced or os.environ.get(ENV) or None
  if choice is not None and choice not in CHOICES:
    raise ValueError(f'${ENV}={choice!r}: use one of {CHOICES} or unset it.')
  if choice is None:
    return jax.default_backend() == 'cpu'
  return choice == 'cpu'


@contextlib.contextmanager
def use(choice: str):
  """Forces 'cpu' or 'plain' for functions traced inside the block."""
  global _forced
  if choice not in CHOICES:
    raise ValueError(f'choice must be one of {CHOICES}, got {choice!r}.')
  old, _forced = _forced, choice
  try:
    yield
  finally:
    _forced = old


def halving_max(x: jax.Array) -> jax.Array:
  """Max over the last axis by pairwise halving."""
  while x.shape[-1] > 1:
    half = x.shape[-1] // 2
    top = jnp.maximum(x[..., :half], x[..., half:2 * half])
    if x.shape[-1] % 2:
      top = jnp.concatenate([top, x[..., 2 * half:]], -1)
    x = top
  return x[..., 0]


def matmul_cumsum(x: jax.Array) -> jax.Array:
  """Cumulative sum over the last axis as one matmul (a triangular matrix of
  ones). Every column adds the same non-negative terms in the same order, so
  the result never decreases along the axis (zero terms add exactly
  nothing)."""
  n = x.shape[-1]
  return x @ jnp.triu(jnp.ones((n, n), x.dtype))


def max_last(x: jax.Array) -> jax.Array:
  """Max over the last axis."""
  return halving_max(x) if cpu_tuned() else jnp.max(x, axis=-1)


def cumsum_last(x: jax.Array) -> jax.Array:
  """Cumulative sum over the last axis (non-decreasing for terms >= 0)."""
  return matmul_cumsum(x) if cpu_tuned() else jnp.cumsum(x, axis=-1)
