"""The reverse process of rtc.dd.model's discrete diffusion: the exact
x_0-parameterised step from level t to s < t and the draw from p_theta (the
formulas are in rtc/dd/model.py's docstring; `bazel run //rtc/bench:dd`
times them).
"""

import math

import jax
import jax.numpy as jnp

from rtc.dd import sampling_ops


def reverse_probs(p0: jax.Array, x_t: jax.Array, t, s) -> jax.Array:
  """p(x_s | x_t) [..., K] from p_theta(x_0 | x_t) [..., K] (closed form).

  `t` > `s` >= 0 broadcast against x_t's shape.
  """
  num_bins = p0.shape[-1]
  t = jnp.asarray(t, jnp.float32)[..., None]
  s = jnp.asarray(s, jnp.float32)[..., None]
  a = (1.0 - t) / (1.0 - s)
  b = (1.0 - a) / num_bins
  onehot = jax.nn.one_hot(x_t, num_bins, dtype=p0.dtype)
  denom = (1.0 - t) * onehot + t / num_bins
  r = p0 / denom
  total = jnp.sum(r, axis=-1, keepdims=True)
  return (a * onehot + b) * ((1.0 - s) * r + (s / num_bins) * total)


def reverse_mixture(p0_at_xt: jax.Array, t, s, num_bins: int):
  """(alpha, beta, gamma) with p(x_s = k | x_t = j) = alpha p_theta(k)
  + beta [k = j] + gamma / K, all >= 0 and summing to 1.

  Only p_theta(x_0 = j) at the current token j enters (`p0_at_xt`, [...]).
  With R = (1 - p_j) K / t + p_j / (1 - t + t / K):
  alpha = (t - s) / t, gamma = (t - s) s R / ((1 - s) K),
  beta = p_j (1 - t) s / (t (1 - t + t / K)) + (1 - t) s R / ((1 - s) K).
  The same distribution as `reverse_probs`, drawn from without forming it.
  """
  k = num_bins
  p = p0_at_xt
  t = jnp.asarray(t, jnp.float32)
  s = jnp.asarray(s, jnp.float32)
  stay = 1.0 - t + t / k  # q(x_t = j | x_0 = j)
  total = (1.0 - p) * k / t + p / stay  # R
  alpha = jnp.broadcast_to((t - s) / t, p.shape)
  gamma = (t - s) * s * total / ((1.0 - s) * k)
  beta = p * (1.0 - t) * s / (t * stay) + (1.0 - t) * s * total / (
      (1.0 - s) * k)
  return alpha, beta, gamma


def block_size(num_bins: int) -> int:
  """The largest divisor of K not above sqrt(K) (16 for 256 bins)."""
  size = math.isqrt(num_bins)
  while num_bins % size:
    size -= 1
  return size


# The maximum and cumulative sums of a draw, chosen per backend (the
# XLA:CPU-tuned halving max and triangular-matmul cumsum on CPU).
max_last = sampling_ops.max_last
_cumsum = sampling_ops.cumsum_last


def trace_flags() -> tuple:
  """A DD policy's process-wide tracing switch (policy.trace_flags): which
  form of those operations a trace now gets."""
  return (sampling_ops.cpu_tuned(),)


def _below(x: jax.Array) -> jax.Array:
  """The largest float below x (x > 0): keeps a draw's target below a total."""
  return jnp.nextafter(x, jnp.zeros_like(x))


def _take(x: jax.Array, idx: jax.Array) -> jax.Array:
  return jnp.take_along_axis(x, idx[..., None], axis=-1)[..., 0]


def sample_logits(rng: jax.Array, logits: jax.Array) -> jax.Array:
  """Draws from softmax(logits [..., K]); see `reverse_sample`."""
  return _draw(rng, logits, None, None, None)


def reverse_sample(rng: jax.Array, logits: jax.Array, x_t: jax.Array, t,
                   s) -> jax.Array:
  """One reverse step from level t to s < t: x_s ~ p(x_s | x_t) for
  p_theta = softmax(logits [..., K]), t and s scalars (or broadcasting
  against x_t: per-token levels).

  Drawn as the mixture of `reverse_mixture` (p_theta, stay, uniform), with
  p_theta by a two-level inverse CDF: one pass over the K logits for their
  maximum and one for the exp-sums of blocks of `block_size(K)` bins, then a
  search over block sums and inside the one chosen block. One uniform per
  token and mixture part; bins of zero probability are never drawn.
  """
  return _draw(rng, logits, x_t, t, s)


def _draw(rng, logits, x_t, t, s):
  num_bins = logits.shape[-1]
  size = block_size(num_bins)
  lead = logits.shape[:-1]
  blocks = logits.reshape(lead + (num_bins // size, size))
  top = max_last(logits)
  sums = jnp.sum(jnp.exp(blocks - top[..., None, None]), axis=-1)
  cdf = _cumsum(sums)
  norm = cdf[..., -1]
  # Three uniforms per token: the p_theta draw, the mixture part, the bin of
  # the uniform part.
  u_draw, u_part, u_bin = jnp.moveaxis(
      jax.random.uniform(rng, lead + (3,)), -1, 0)
  # p_theta draw: the block, then the bin inside it.
  target = jnp.minimum(u_draw * norm, _below(norm))
  block = jnp.sum(cdf <= target[..., None], axis=-1)
  before = jnp.where(block > 0, _take(cdf, jnp.maximum(block - 1, 0)), 0.0)
  frac = (target - before) / (_take(cdf, block) - before)
  inner = jnp.take_along_axis(blocks, block[..., None, None],
                              axis=-2)[..., 0, :]
  inner_cdf = _cumsum(jnp.exp(inner - top[..., None]))
  inner_total = inner_cdf[..., -1]
  inner_target = jnp.minimum(frac * inner_total, _below(inner_total))
  pos = jnp.minimum(jnp.sum(inner_cdf <= inner_target[..., None], axis=-1),
                    size - 1)
  drawn = (block * size + pos).astype(jnp.int32)
  if x_t is None:
    return drawn
  p_at_xt = jnp.exp(_take(logits, x_t) - top) / norm
  alpha, beta, gamma = reverse_mixture(p_at_xt, t, s, num_bins)
  part = u_part * (alpha + beta + gamma)
  uniform = jnp.minimum(jnp.floor(u_bin * num_bins),
                        num_bins - 1).astype(jnp.int32)
  return jnp.where(part < alpha, drawn,
                   jnp.where(part < alpha + beta, x_t, uniform))
