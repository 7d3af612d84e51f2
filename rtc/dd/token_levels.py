"""Per-token corruption levels for uniform DD (`model.variant =
'token_levels'`), in the spirit of diffusion forcing (Chen et al. 2024).

The seed's DD trains with one corruption level per chunk, so at sampling it
cannot tell a committed token from a noisy one: `realtime` re-corrupts the
committed positions to the current level at every step (rtc.dd.uniform).
This leaf builds on that one (its forward process and `sample_chunk`):

* Training: a share `model.token_level_share` of the examples (default 0.5)
  draw a level per chunk position, t_h ~ U[0, 1), the others one level per
  chunk as before; the network gets the levels [B, H]. The loss is the
  seed's cross-entropy over every position (with `simulated_delay`, the
  first d positions are clean at level 0 and left out, as before).
* `realtime` / `hard_masking`: committed positions (w = 1) are the previous
  chunk's bins, clean at level 0, at every step, and come back exactly.
  Positions with 0 < w < 1 follow `model.soft_positions`: 'tilt' (the
  default; the seed's rule: at the chunk's level, p_theta tilted towards
  the previous chunk with weight g * w) or 'given' (each starts from the
  previous chunk's bin at its own level 1 - w: kept with probability w,
  else a uniform bin, and its level falls from 1 - w to 0 over the steps
  while w = 0 positions fall from 1; nothing is tilted).
* Early start (`model.early_start`, default off; rtc.dd.base.early_start):
  with a share f of the positions committed, max(1, round(N (1 - f)))
  equal steps from level 1 to 0 instead of N (H = 8, d = 3, N = 5: 3
  network calls); the committed positions are clean anyway, so the others
  get fewer, larger steps.
* `naive`, BID and `training_time` are the uniform model's.

Runs written with `model.token_levels = 'independent'` read as this variant
(rtc.dd.model.upgrade); `'shared'` was the seed's model.
"""

import dataclasses

import jax
import jax.numpy as jnp

from rtc.dd import base
from rtc.dd import uniform


@dataclasses.dataclass(frozen=True)
class TokenLevelsConfig(base.ModelConfig):
  variant: str = 'token_levels'
  # The share of training examples that draw a level per position.
  token_level_share: float = 0.5
  # realtime's rule for 0 < w < 1: 'tilt' or 'given'.
  soft_positions: str = 'tilt'
  # Fewer steps when a prefix is committed (rtc.dd.base.early_start).
  early_start: bool = False

  def __post_init__(self):
    super().__post_init__()
    if not 0.0 <= self.token_level_share <= 1.0:
      raise ValueError('model.token_level_share must be in [0, 1], got '
                       f'{self.token_level_share}.')
    base.check_choice('soft_positions', self.soft_positions,
                      base.SOFT_RULES)


def draw_noise_levels(rng, batch: int, chunk_size: int, share: float):
  """Noise levels [B, H]: per position for a share of the examples, else
  one per example. Returns (noise_levels, independent [B] bool)."""
  chunk_rng, token_rng, pick_rng = jax.random.split(rng, 3)
  shared = jax.random.uniform(chunk_rng, (batch, 1))
  per_token = jax.random.uniform(token_rng, (batch, chunk_size))
  independent = jax.random.uniform(pick_rng, (batch,)) < share
  noise_levels = jnp.where(independent[:, None], per_token,
                           jnp.broadcast_to(shared, (batch, chunk_size)))
  return noise_levels, independent


class TokenLevelsPolicy(uniform.UniformPolicy):
  """Uniform DD trained with per-token levels; committed tokens are clean."""

  def _guided(self, params, rng, obs, num_steps, noise, y, tilt, committed,
              stop=None):
    """Committed positions clean at level 0 every step; 0 < w < 1 tilted
    or started from y at level 1 - w (`soft_positions`)."""
    del stop  # Early stop is masked DD's (rtc.dd.masked).
    calls = None
    if self.config.early_start:
      _, calls = base.early_start(committed, num_steps)
    if self.config.soft_positions == 'tilt':
      return self._sample(params, rng, obs, num_steps, noise, tilt=tilt,
                          constraint=uniform.Constraint(
                              y=y, clean=committed, calls=calls))
    w = tilt[1]
    init_rng, keep_rng, rng = jax.random.split(rng, 3)
    start = jnp.broadcast_to(1.0 - w[None, :], committed.shape)
    keep = jax.random.uniform(keep_rng, y.shape) >= start[..., None]
    noise = jnp.where(keep, y, self._start(init_rng, obs, noise))
    return self._sample(params, rng, obs, num_steps, noise,
                        constraint=uniform.Constraint(
                            y=y, clean=committed, start=start, calls=calls))

  def _draw_levels(self, rng, batch: int):
    """Per-token levels [B, H] for a share of the examples."""
    return draw_noise_levels(rng, batch, self.chunk_size,
                             self.config.token_level_share)[0]


# The leaf interface (rtc.dd.model).
Config, Policy = TokenLevelsConfig, TokenLevelsPolicy
