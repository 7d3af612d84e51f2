"""Action bins: a continuous chunk as tokens, for token-based policy families
(rtc.dd; a new family imports them from here, without DD).

K bins per action dimension split [-1, 1] evenly; a bin stands for its
centre. The guidance tilt exp(-g * w_h * (centre_k - centre(y))^2 / 2) pulls
a token distribution towards the previous chunk y's bins with prefix weight
w_h (DESIGN §5).
"""

import jax
import jax.numpy as jnp


def to_bins(actions: jax.Array, num_bins: int) -> jax.Array:
  """Continuous actions in [-1, 1] -> bin indices (int32)."""
  idx = jnp.floor((actions + 1.0) / 2.0 * num_bins)
  return jnp.clip(idx, 0, num_bins - 1).astype(jnp.int32)


def from_bins(bins: jax.Array, num_bins: int) -> jax.Array:
  """Bin indices -> bin centres in [-1, 1]."""
  return -1.0 + (bins.astype(jnp.float32) + 0.5) * (2.0 / num_bins)


def bin_centres(num_bins: int) -> jax.Array:
  return from_bins(jnp.arange(num_bins), num_bins)


def tilt_logits(logits: jax.Array, y_bins: jax.Array, weights: jax.Array,
                g) -> jax.Array:
  """logits [B,H,A,K] + log exp(-g * w_h * (centre_k - centre(y))^2 / 2)."""
  num_bins = logits.shape[-1]
  diff = bin_centres(num_bins) - from_bins(y_bins, num_bins)[..., None]
  return logits - 0.5 * g * weights[None, :, None, None] * jnp.square(diff)


def tilt_terms(y_bins: jax.Array, weights: jax.Array, g, num_bins: int):
  """`tilt_logits`' tilt as extra inputs of the output matmul.

  Returns (features [B, H, 2A + 1], matrix [2A + 1, A * K]) whose product is
  the tilt flattened over (A, K): with s_h = g w_h / 2 and c the bin centres,
  -s_h (c_k - c_y)^2 = (2 s_h c_y) c_k + (-s_h c_y^2) 1 + (-s_h) c_k^2.
  Inside the matmul the tilt costs no pass over the B * H * A * K logits.
  """
  action_dim = y_bins.shape[-1]
  centres = bin_centres(num_bins)
  c_y = from_bins(y_bins, num_bins)  # [B, H, A]
  scale = jnp.broadcast_to(0.5 * g * weights[None, :, None], c_y.shape)
  features = jnp.concatenate(
      [2.0 * scale * c_y, -scale * jnp.square(c_y), -scale[..., :1]], axis=-1)
  eye = jnp.eye(action_dim, dtype=jnp.float32)[:, :, None]
  matrix = jnp.concatenate([
      (eye * centres).reshape(action_dim, -1),
      (eye * jnp.ones_like(centres)).reshape(action_dim, -1),
      jnp.tile(jnp.square(centres), action_dim)[None],
  ], axis=0)
  return features, matrix
