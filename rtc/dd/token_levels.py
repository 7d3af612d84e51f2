"""Per-token corruption levels for uniform DD (`model.token_levels`), in the
spirit of diffusion forcing (Chen et al. 2024).

The seed's DD trains with one corruption level per chunk, so at sampling it
cannot tell a committed token from a noisy one: `realtime` re-corrupts the
committed positions to the current level at every step (rtc.dd.model).
With `model.token_levels = 'independent'`:

* Training: a share `model.token_level_share` of the examples (default 0.5)
  draw a level per chunk position, t_h ~ U[0, 1), the others one level per
  chunk as before; the network gets the levels [B, H]. The loss is the
  seed's cross-entropy over every position (with `simulated_delay`, the
  first d positions are clean at level 0 and left out, as before).
* `realtime` / `hard_masking`: committed positions (w = 1) are the previous
  chunk's bins, clean at level 0, at every step, and come back exactly.
  Positions with 0 < w < 1 keep the seed's rule (at the chunk's level,
  p_theta tilted towards the previous chunk with weight g * w); a rule that
  starts them from the previous plan is not built.
* `naive`, BID and `training_time` are the uniform model's.

`'shared'` (and runs without the option) is the seed's model.
"""

import dataclasses

import jax
import jax.numpy as jnp

from rtc.common import prefix
from rtc.dd import model as dd_model
from rtc.dd import ordinal

TOKEN_LEVELS = ('shared', 'independent')


@dataclasses.dataclass(frozen=True)
class TokenLevelsConfig(dd_model.ModelConfig):
  token_levels: str = 'independent'
  token_level_share: float = 0.5

  def __post_init__(self):
    super().__post_init__()
    if self.token_levels != 'independent':
      raise ValueError("TokenLevelsConfig needs model.token_levels = "
                       f"'independent', got {self.token_levels!r}.")
    if not 0.0 <= self.token_level_share <= 1.0:
      raise ValueError('model.token_level_share must be in [0, 1], got '
                       f'{self.token_level_share}.')


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


class TokenLevelsPolicy(dd_model.DiscreteDiffusionPolicy):
  """Uniform DD trained with per-token levels; committed tokens are clean."""

  def realtime_action(self, params, rng, obs, num_steps: int, prev_chunk,
                      inference_delay, prefix_attention_horizon,
                      prefix_attention_schedule: str = 'exp',
                      max_guidance_weight: float = 3.0, noise=None):
    """Committed (w = 1) positions clean at level 0; 0 < w < 1 tilted."""
    w = prefix.prefix_weights(inference_delay, prefix_attention_horizon,
                              self.chunk_size, prefix_attention_schedule)
    y = self.to_bins(prev_chunk)
    clean = jnp.broadcast_to((w >= 1.0)[None], (obs.shape[0], self.chunk_size))
    x0, logits = self._sample(params, rng, obs, num_steps, noise,
                              tilt=(y, w, max_guidance_weight), y=y,
                              clean=clean)
    return jnp.where(clean[..., None], self.from_bins(y),
                     self._decode(x0, logits))

  def loss_and_metrics(self, params, rng, obs, action):
    """The seed's cross-entropy with per-token levels for a share."""
    expected = (obs.shape[0], self.chunk_size, self.action_dim)
    if action.shape != expected:
      raise ValueError(f'action must have shape {expected}, got '
                       f'{action.shape}.')
    batch = obs.shape[0]
    noise_level_rng, noise_rng, delay_rng = jax.random.split(rng, 3)
    x0 = self.to_bins(action)
    noise_levels, _ = draw_noise_levels(noise_level_rng, batch, self.chunk_size,
                            self.config.token_level_share)
    covered = jnp.ones((batch, self.chunk_size), bool)
    if self.config.simulated_delay is not None:
      delay = prefix.sample_delays(delay_rng, batch,
                                   self.config.simulated_delay)
      covered = jnp.arange(self.chunk_size)[None, :] >= delay[:, None]
      noise_levels = jnp.where(covered, noise_levels, 0.0)
    x_t = dd_model.corrupt(noise_rng, x0, noise_levels, self.num_bins)
    logits = self.logits(params, obs, x_t, noise_levels)
    nll = ordinal.smoothed_cross_entropy(logits, x0,
                                         self.config.target_sigma)
    weight = jnp.broadcast_to(covered[..., None], nll.shape).astype(
        jnp.float32)
    denom = jnp.maximum(jnp.sum(weight), 1.0)
    loss = jnp.sum(nll * weight) / denom
    correct = (jnp.argmax(logits, axis=-1) == x0).astype(jnp.float32)
    accuracy = jnp.sum(correct * weight) / denom
    return loss, {'cross_entropy': loss, 'bin_accuracy': accuracy}
