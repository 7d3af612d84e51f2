r"""Ordinal-aware pieces of the discrete-diffusion policy (rtc.dd.model).

The seed's DD treats the K bins as unrelated classes: one-hot
cross-entropy, a free embedding table per action dimension, a free output
row per bin. Nothing tells the network that bin 130 is next to bin 131, so it
learns the order of the action axis from data, one bin at a time (docs/dd_variants.md,
"Why DD learned slowly"). The options here give it that order; each is off
in the seed's configuration and recorded in a run's config.json.

* `model.target_sigma` (sigma, in bin widths; 0 = one-hot, the seed):
  cross-entropy against a Gaussian-smoothed histogram over the bins, the
  HL-Gauss target of Imani & White, "Improving Regression Performance with
  Distributional Losses" (ICML 2018), and Farebrother et al., "Stop Regressing:
  Training Value Functions via Classification for Scalable Deep RL" (ICML
  2024): the mass a Normal(centre(x_0), sigma) puts on each bin, renormalised
  over [-1, 1]. A near miss now costs less than a far one, and the gradient
  of every logit near the target points the same way.
  What it does to p_theta: cross-entropy is minimised by the expected target,
  so the network learns q(x_0 | x_t) convolved with that kernel, a posterior
  blurred by about sigma bin widths (and pulled inwards by up to about sigma
  at the ends, where the kernel is cut off). The reverse step is unchanged
  and stays exact with respect to what the network predicts: it treats the
  blurred p_theta as the x_0 posterior, so a sample carries extra noise of
  about sigma bin widths (sigma * 2 / K in action units: 0.008 at K = 256,
  sigma = 1), which `decode = 'expected_value'` or `'mode'` averages away.
* `model.centre_features` (bool): the token features of bin k are fixed
  sin-cos features of its centre (periods 4 bin widths ... 4) plus the
  learned table, which then starts at zero; neighbouring bins start close and
  far bins apart (`centre_features`).
* `model.ordinal_head` (F >= 0; 0 = off): the output layer's weight gains a
  low-rank term V @ M, with V [C, A * F] learned (zero at initialisation)
  and M a fixed basis of F smooth functions of the bin centre (c, c^2 and
  sin-cos of periods 0.25 ... 4). With it one output unit shifts or narrows
  the whole distribution over the bins (logits linear in c and c^2 are a
  discretised Gaussian) instead of K unrelated rows each learning their part.
  It is folded into the weight once per call (C * A * F * K multiply-adds,
  independent of the batch), so a step costs what the seed's costs.
* `model.decode`: how the last step becomes continuous actions: 'sample'
  (the drawn x_0's bin centres, what the seed describes), 'expected_value'
  (the mean of the centres under the last step's p_theta) or 'mode' (the
  centre of its most likely bin). The seed's `expected_value_output = True`
  is read as 'expected_value'.
"""

import contextlib

import haiku as hk
import jax
import jax.numpy as jnp

from rtc.common.core import backbone

DECODES = ('sample', 'expected_value', 'mode')


def _centres(num_bins: int) -> jax.Array:
  return -1.0 + (jnp.arange(num_bins, dtype=jnp.float32) + 0.5) * (
      2.0 / num_bins)


def smoothed_target_table(num_bins: int, sigma: float) -> jax.Array:
  """[K, K]: row i is the HL-Gauss target for clean bin i (rows sum to 1).

  The mass of Normal(centre_i, sigma bin widths) on each bin, renormalised
  over [-1, 1]; sigma = 0 gives the identity (one-hot targets).
  """
  if sigma < 0:
    raise ValueError(f'model.target_sigma must be >= 0, got {sigma}.')
  if sigma == 0:
    return jnp.eye(num_bins, dtype=jnp.float32)
  # In bin-width units the edges are 0..K and bin i's centre is i + 1/2.
  edges = jnp.arange(num_bins + 1, dtype=jnp.float32)
  mean = jnp.arange(num_bins, dtype=jnp.float32) + 0.5
  cdf = jax.scipy.stats.norm.cdf((edges[None, :] - mean[:, None]) / sigma)
  mass = cdf[:, 1:] - cdf[:, :-1]
  return mass / jnp.sum(mass, axis=-1, keepdims=True)


def smoothed_cross_entropy(logits: jax.Array, x0: jax.Array,
                           sigma: float) -> jax.Array:
  """-sum_k y_k log softmax(logits)_k per token ([..., K] -> [...]), y the
  HL-Gauss target of the clean bins x0 (one-hot for sigma = 0)."""
  num_bins = logits.shape[-1]
  logp = jax.nn.log_softmax(logits, axis=-1)
  if sigma == 0:
    return -jnp.take_along_axis(logp, x0[..., None], axis=-1)[..., 0]
  target = jnp.take(smoothed_target_table(num_bins, sigma), x0, axis=0)
  return -jnp.sum(target * logp, axis=-1)


def centre_features(num_bins: int, dim: int) -> jax.Array:
  """[K, dim] fixed sin-cos features of the bin centres (periods from 4 bin
  widths to 4 action units; an odd dim gets the centre itself last)."""
  centres = _centres(num_bins)
  width = 2.0 / num_bins
  feats = backbone.posemb_sincos(centres, dim - dim % 2,
                                 min_period=4.0 * width, max_period=4.0)
  if dim % 2:
    feats = jnp.concatenate([feats, centres[:, None]], axis=-1)
  return feats


def output_basis(num_bins: int, size: int) -> jax.Array:
  """[size, K] smooth functions of the bin centre c: c, c^2 - 1/3, then
  sin-cos pairs of periods 0.25 ... 4 (size >= 2)."""
  if size < 2:
    raise ValueError(f'model.ordinal_head must be 0 or >= 2, got {size}.')
  c = _centres(num_bins)
  rows = [c, jnp.square(c) - 1.0 / 3.0]
  if size > 2:
    waves = backbone.posemb_sincos(c, size - 2 + size % 2, min_period=0.25,
                                   max_period=4.0)
    rows += list(waves.T[:size - 2])
  return jnp.stack(rows)


def head_term(weights: jax.Array, basis: jax.Array) -> jax.Array:
  """V [C, A, F] and M [F, K] -> the output weight's extra term [C, A * K]."""
  channels, action_dim = weights.shape[:2]
  term = jnp.einsum('caf,fk->cak', weights, basis)
  return term.reshape(channels, action_dim * basis.shape[-1])


def ordinal_head(size: int, channels: int, action_dim: int, num_bins: int,
                 out_weight: str):
  """A context in which the parameter `out_weight` (the output layer's
  [C, A * K] weight) reads as w + V @ M (`head_term`), V the learned
  'ordinal_head/weights' [C, A, size], zero at initialisation; size 0: off."""
  if not size:
    return contextlib.nullcontext()
  weights = hk.get_parameter('weights', (channels, action_dim, size),
                             jnp.float32, init=jnp.zeros)
  basis = output_basis(num_bins, size)

  def getter(next_getter, value, context):
    if context.full_name == out_weight:
      value = value + head_term(weights, basis).astype(value.dtype)
    return next_getter(value)

  return hk.custom_getter(getter)


def decode(x0: jax.Array, logits: jax.Array, how: str) -> jax.Array:
  """The last step's x_0 bins [..., ] and logits [..., K] -> actions [...]."""
  num_bins = logits.shape[-1]
  centres = _centres(num_bins)
  if how == 'sample':
    return centres[x0]
  if how == 'expected_value':
    return jnp.sum(jax.nn.softmax(logits, axis=-1) * centres, axis=-1)
  if how == 'mode':
    return centres[jnp.argmax(logits, axis=-1)]
  raise ValueError(f'model.decode must be one of {DECODES}, got {how!r}.')
