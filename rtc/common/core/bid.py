"""Bidirectional decoding (BID): pick, among sampled chunks, the most coherent.

One function for every policy kind (DESIGN §6). Given a sampler that draws
chunks for a batch of observations:

* backward loss of a candidate = sum_i w_i * ||chunk_i - prev_i|| with `exp`
  prefix weights (rtc.common.core.prefix);
* with a weak policy and `bid_k`, add the forward loss: the summed distance to
  the k strong candidates with the smallest backward loss minus the summed
  distance to the k best weak candidates, divided by n_samples;
* return the candidate with the smallest loss, per batch element.

Strong and weak samples are drawn with the same random key, as in the earlier
implementation, so their noise is shared.
"""

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from rtc.common.core import prefix

Sampler = Callable[[jax.Array, jax.Array], jax.Array]  # (rng, obs) -> chunks


def _distance(a, b):
  return jnp.linalg.norm(a - b, axis=-1)


def bid_losses(strong, prev_chunk, weights, weak=None, bid_k=None):
  """Losses [n, B] of candidates `strong` [n, B, H, A] (see module doc)."""
  loss = jnp.sum(_distance(strong, prev_chunk[None]) * weights, axis=-1)
  if weak is not None:
    n = strong.shape[0]
    weak_loss = jnp.sum(_distance(weak, prev_chunk[None]) * weights, axis=-1)
    strong_idx = jax.lax.top_k(-loss.T, bid_k)[1].T  # [k, B]
    weak_idx = jax.lax.top_k(-weak_loss.T, bid_k)[1].T
    a_plus = jnp.take_along_axis(strong, strong_idx[..., None, None], axis=0)
    a_minus = jnp.take_along_axis(weak, weak_idx[..., None, None], axis=0)
    forward = (
        jnp.sum(_distance(strong[:, None], a_plus[None]), axis=(1, 3)) -
        jnp.sum(_distance(strong[:, None], a_minus[None]), axis=(1, 3)))
    loss = loss + forward / n
  return loss


def bid_action(sample: Sampler, rng: jax.Array, obs: jax.Array,
               prev_chunk: jax.Array, inference_delay,
               prefix_attention_horizon, n_samples: int,
               weak_sample: Optional[Sampler] = None,
               bid_k: Optional[int] = None) -> jax.Array:
  """Draws `n_samples` chunks per observation and returns the BID choice."""
  if (weak_sample is None) != (bid_k is None):
    raise ValueError('BID needs both a weak policy and bid_k, or neither.')
  if bid_k is not None and not 1 <= bid_k <= n_samples:
    raise ValueError(f'bid_k must be in [1, n_samples={n_samples}], got '
                     f'{bid_k}.')
  batch, chunk_size = prev_chunk.shape[:2]
  weights = prefix.prefix_weights(inference_delay, prefix_attention_horizon,
                                  chunk_size, 'exp')
  obs_rep = jnp.tile(obs, (n_samples,) + (1,) * (obs.ndim - 1))

  def draw(sampler):
    chunks = sampler(rng, obs_rep)
    return chunks.reshape((n_samples, batch) + chunks.shape[1:])

  strong = draw(sample)
  weak = draw(weak_sample) if weak_sample is not None else None
  loss = bid_losses(strong, prev_chunk, weights, weak, bid_k)
  best = jnp.argmin(loss, axis=0)  # [B]
  return jnp.take_along_axis(strong, best[None, :, None, None], axis=0)[0]
