r"""Uniform-corruption discrete diffusion, the seed's model:
`model.variant = 'uniform'` (the default; rtc.dd.base has the network).

* Forward process (`corrupt`): every token is kept with probability 1 - t,
  otherwise replaced by a uniformly drawn bin (which may equal it), so
  q(x_t = j | x_0 = i) = (1 - t) [i = j] + t / K and a token survives with
  probability 1 - t + t / K. Levels compose: from s to t > s a token is kept
  with probability a = (1 - t) / (1 - s). Training: one level per example,
  the loss over every position (but a training-time RTC prefix).
* Reverse step from t to s < t, x_0-parameterised and exact:
  p(x_s = k | x_t = j) = sum_i p_theta(x_0 = i) q(x_s = k | x_t = j, x_0 = i).
  With b = (1 - a) / K, D_i = q(x_t = j | x_0 = i) and r_i = p_theta(i) / D_i,
  R = sum_i r_i, it is, in O(K) per token,
      p(x_s = k | x_t = j) = (a [j = k] + b) * ((1 - s) r_k + (s / K) R),
  which sums to 1 (a mixture of posteriors). At s = 0 it is p_theta itself.
  Sampling never forms it: it is the mixture alpha p_theta + beta [k = j] +
  gamma / K with alpha = (t - s) / t and beta, gamma from p_theta(j) alone
  (rtc.dd.reverse: `reverse_mixture`), and p_theta is drawn from by a
  two-level inverse CDF over blocks of bins (`reverse_sample`).
* `action`: x_1 uniform (or `noise=`, starting bins [B, H, A] int32), then
  `num_steps` equal steps 1 -> 0 (`sample_chunk`); the last yields x_0.
  Output per `model.decode` (rtc.dd.ordinal): its bin centres ('sample'),
  the expected centre under the last step's p_theta, or its most likely
  bin's centre.
* `realtime_action` (no gradients): positions with w = 1 are pinned: at
  every step their token is y forward-corrupted to the current level, and
  exactly y at the end. Positions with 0 < w < 1 are guided by the tilt
  (rtc.dd.base), g = `max_guidance_weight` (docs/dd_variants.md, "Choosing g": 3 on
  the quickstart level, g >= 10 hurts). Positions with w = 0 are sampled as
  without guidance. `hard_masking` is the `zeros` schedule: pin the first d
  positions only.
* `bid_action`: rtc.common.core.bid with `action` as the sampler.
* `training_time_action` sets the first d positions clean from the previous
  chunk at every step (level 0) and returns them exactly.
"""

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rtc.dd import base
from rtc.dd import reverse

class Constraint(NamedTuple):
  """What `sample_chunk` holds to the previous chunk's bins `y` [B,H,A].

  pinned: [H] bool, positions that follow y corrupted to the current level
    and end exactly at y (the seed's realtime).
  clean: [B,H] bool, positions that are y with level 0 at every step
    (training-time RTC, per-token levels).
  start: [B,H] in (0, 1], each position's level is start * the shared level
    (per-token levels; the reverse step per position; x_init should be at
    those levels).
  calls: early start (may be traced, 1..num_steps): that many equal steps
    from level 1 to 0 instead of num_steps (a loop with a traced trip count).
  """
  y: Optional[jax.Array] = None
  pinned: Optional[jax.Array] = None
  clean: Optional[jax.Array] = None
  start: Optional[jax.Array] = None
  calls: Optional[jax.Array] = None


def corrupt(rng: jax.Array, x0: jax.Array, t, num_bins: int) -> jax.Array:
  """Keeps each token with probability 1 - t, else draws a uniform bin.

  `t` broadcasts against x0's leading axes ([B], [B, H] or a scalar).
  """
  t = jnp.asarray(t, jnp.float32)
  t = t.reshape(t.shape + (1,) * (x0.ndim - t.ndim))
  keep_rng, bin_rng = jax.random.split(rng)
  keep = jax.random.uniform(keep_rng, x0.shape) >= t
  noise = jax.random.randint(bin_rng, x0.shape, 0, num_bins, jnp.int32)
  return jnp.where(keep, x0, noise)


def sample_chunk(logits_fn: Callable, rng: jax.Array, x_init: jax.Array,
                 num_steps: int, num_bins: int,
                 constraint: Constraint = Constraint()):
  """Runs the reverse process from x_init (level 1) down to x_0.

  logits_fn(x_t [B,H,A], level () or [B,H]) -> logits [B,H,A,K] (guidance
  tilts them: `bins.tilt_logits`), held to the previous chunk by
  `constraint` (see `Constraint`).
  Returns (x_0 bins [B,H,A], the last step's logits [B,H,A,K]).
  """
  y, pinned, clean, start, calls = constraint
  noise_levels = 1.0 - jnp.arange(num_steps + 1,
                                  dtype=jnp.float32) / num_steps

  def constrain(x, t, key):
    # One level for the batch unless some tokens are clean (then [B, H]).
    noise_level = t if start is None else t * start
    if pinned is not None:
      x = jnp.where(pinned[None, :, None], corrupt(key, y, t, num_bins), x)
    if clean is not None:
      x = jnp.where(clean[..., None], y, x)
      noise_level = jnp.where(clean, 0.0, noise_level)
    return x, noise_level

  def step(x, k):
    return step_between(x, noise_levels[k], noise_levels[k + 1], k)

  def step_between(x, t, s, k):
    key = jax.random.fold_in(rng, k)
    pin_key, sample_key = jax.random.split(key)
    x, noise_level = constrain(x, t, pin_key)
    logits = logits_fn(x, noise_level)
    if start is not None:  # Per position; clean ones are reset to y anyway.
      t, s = (level[..., None] * jnp.maximum(start, 1e-3)[..., None]
              for level in (t, s))
    return reverse.reverse_sample(sample_key, logits, x, t, s), logits

  if calls is not None:
    n = jnp.asarray(calls, jnp.float32)

    def body(j, carry):
      level = lambda i: jnp.maximum(1.0 - i.astype(jnp.float32) / n, 0.0)
      return step_between(carry[0], level(j), level(j + 1), j)

    logits = jnp.zeros(x_init.shape + (num_bins,), jnp.float32)
    x, logits = jax.lax.fori_loop(0, jnp.asarray(calls, jnp.int32), body,
                                  (x_init, logits))
  else:
    # All steps but the last in a scan; the last also returns its logits.
    x, _ = jax.lax.scan(lambda x, k: (step(x, k)[0], None), x_init,
                        jnp.arange(num_steps - 1))
    x, logits = step(x, num_steps - 1)
  for held in (None if pinned is None else pinned[None, :], clean):
    if held is not None:
      x = jnp.where(held[..., None], y, x)
  return x, logits


class UniformPolicy(base.DiscreteDiffusionPolicy):
  """Discrete diffusion with uniform corruption (the seed's model)."""

  def _start(self, rng, obs, noise):
    noise = self._check_noise(obs, noise)
    if noise is not None:
      return noise
    shape = (obs.shape[0], self.chunk_size, self.action_dim)
    return jax.random.randint(rng, shape, 0, self.num_bins, jnp.int32)

  def _sample(self, params, rng, obs, num_steps, noise, tilt=None,
              constraint: Constraint = Constraint()):
    init_rng, rng = jax.random.split(rng)
    x_init = self._start(init_rng, obs, noise)
    if tilt is None:
      logits_fn = lambda x, t: self.logits(params, obs, x, t)
    else:
      logits_fn = lambda x, t: self.logits(params, obs, x, t, tilt)
    x0, logits = sample_chunk(logits_fn, rng, x_init, num_steps,
                              self.num_bins, constraint)
    return self._decode(x0, logits)

  def action(self, params, rng, obs, num_steps: int, noise=None):
    """A chunk [B, H, A] (bin centres) from the reverse process."""
    return self._sample(params, rng, obs, num_steps, noise)

  def _guided(self, params, rng, obs, num_steps, noise, y, tilt, committed,
              stop=None):
    """Committed positions [B,H] follow y corrupted to the current level
    ("pinned")."""
    del stop  # Early stop is masked DD's (rtc.dd.masked).
    return self._sample(params, rng, obs, num_steps, noise, tilt=tilt,
                        constraint=Constraint(y=y, pinned=committed[0]))

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """The first d positions are the previous chunk's bins at level 0; they
    come back as the committed actions themselves (whatever the decoding)."""
    clean = self._clean_prefix(obs, inference_delay)
    value = self._sample(params, rng, obs, num_steps, noise,
                         constraint=Constraint(y=self.to_bins(prev_chunk),
                                               clean=clean))
    return jnp.where(clean[..., None], prev_chunk.astype(jnp.float32), value)

  def _corrupt(self, rng, x0, level):
    """Uniform corruption; every token is in the loss."""
    return corrupt(rng, x0, level, self.num_bins), jnp.ones(x0.shape)


# The leaf interface (rtc.dd.model).
Config, Policy = base.ModelConfig, UniformPolicy
