r"""Discrete-diffusion action-chunking policy (SPEC §7), a drop-in sibling of
rtc.flow.model.FlowPolicy on the shared backbone.

Notation: K bins, corruption level t in [0, 1] (t = 0 clean, t = 1 uniform
noise), chunk tokens x [B, H, A] of bin indices.

* Bins: K equal bins on [-1, 1]; `to_bins(a) = clip(floor((a + 1) / 2 * K),
  0, K - 1)`, `from_bins(i) = -1 + (i + 1/2) * 2 / K` (bin centres); the round
  trip is off by at most 1/K inside [-1, 1].
* Forward process: every token is kept with probability 1 - t, otherwise
  replaced by a uniformly drawn bin (which may equal it), so
  q(x_t = j | x_0 = i) = (1 - t) [i = j] + t / K and a token survives with
  probability 1 - t + t / K. Levels compose: from s to t > s a token is kept
  with probability a = (1 - t) / (1 - s).
* Network: the backbone (rtc.common.backbone) with token features the
  concatenated learned embeddings of a position's A bins (one table per action
  dimension), conditioned on the corruption level, output A * K logits per
  position: p_theta(x_0 | x_t).
* Loss: cross-entropy of those logits against the clean bins, averaged over
  the positions and dimensions the loss covers; metric: bin accuracy.
* Reverse step from t to s < t, x_0-parameterised and exact:
  p(x_s = k | x_t = j) = sum_i p_theta(x_0 = i) q(x_s = k | x_t = j, x_0 = i).
  With b = (1 - a) / K, D_i = q(x_t = j | x_0 = i) and r_i = p_theta(i) / D_i,
  R = sum_i r_i, it is, in O(K) per token,
      p(x_s = k | x_t = j) = (a [j = k] + b) * ((1 - s) r_k + (s / K) R),
  which sums to 1 (a mixture of posteriors). At s = 0 it is p_theta itself.
  Sampling never forms it: it is the mixture alpha p_theta + beta [k = j] +
  gamma / K with alpha = (t - s) / t and beta, gamma from p_theta(j) alone
  (`reverse_mixture`), and p_theta is drawn from by a two-level inverse CDF
  over blocks of bins (`reverse_sample`).
* `action`: x_1 uniform (or `noise=`, starting bins [B, H, A] int32), then
  `num_steps` equal steps 1 -> 0; the last yields x_0. Output: bin centres, or
  with `model.expected_value_output` the expectation of the centres under the
  last step's p_theta.
* `realtime_action` (no gradients): prefix weights w (rtc.common.prefix) on
  the previous chunk's bins y. Positions with w = 1 are pinned: at every step
  their token is y forward-corrupted to the current level, and exactly y at
  the end. Positions with 0 < w < 1 are guided: p_theta(x_0) is tilted by
  exp(-g * w * (centre_k - centre(y))^2 / 2), g = `max_guidance_weight`,
  computed as extra inputs of the output layer's matmul (`tilt_terms`).
  The tilt is in action units, so g does not depend on K; it acts at every
  denoising step and, through the chunk-to-chunk chain, on every later chunk,
  so small values are already strong (README.md, "Choosing g": 3 on the
  quickstart level, g >= 10 hurts). Positions with w = 0 are sampled as
  without guidance.
  `hard_masking` is the `zeros` schedule: pin the first d positions only.
* `bid_action`: rtc.common.bid with `action` as the sampler.
* Training-time RTC (`simulated_delay` = D): per example d in {0..D-1},
  p(d) proportional to e^-d; the first d positions keep their clean tokens
  with per-token level 0 and are left out of the loss.
  `training_time_action` sets them clean from the previous chunk at every
  step (level 0) and returns them exactly.
"""

import dataclasses
import functools
import math
from typing import Callable, Optional

import haiku as hk
import jax
import jax.numpy as jnp

from rtc.common import backbone
from rtc.common import bid
from rtc.common import policy
from rtc.common import prefix
from rtc.dd import sampling_ops

ROOT = 'dd'
EMBED = 'dd_embed'


@dataclasses.dataclass(frozen=True)
class ModelConfig(backbone.MixerConfig):
  num_bins: int = 256
  bin_embedding_dim: int = 32
  # Decode the last step as the expected bin centre instead of a sample.
  expected_value_output: bool = False

  def __post_init__(self):
    super().__post_init__()
    if self.num_bins < 2:
      raise ValueError(f'model.num_bins must be >= 2, got {self.num_bins}.')
    if self.bin_embedding_dim < 1:
      raise ValueError('model.bin_embedding_dim must be >= 1, got '
                       f'{self.bin_embedding_dim}.')


# -- bins and the forward process ---------------------------------------------


def to_bins(actions: jax.Array, num_bins: int) -> jax.Array:
  """Continuous actions in [-1, 1] -> bin indices (int32)."""
  idx = jnp.floor((actions + 1.0) / 2.0 * num_bins)
  return jnp.clip(idx, 0, num_bins - 1).astype(jnp.int32)


def from_bins(bins: jax.Array, num_bins: int) -> jax.Array:
  """Bin indices -> bin centres in [-1, 1]."""
  return -1.0 + (bins.astype(jnp.float32) + 0.5) * (2.0 / num_bins)


def bin_centres(num_bins: int) -> jax.Array:
  return from_bins(jnp.arange(num_bins), num_bins)


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


# The maximum and cumulative sums of a draw, chosen per backend.
_max_last = sampling_ops.max_last
_cumsum = sampling_ops.cumsum_last


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
  p_theta = softmax(logits [..., K]), t and s scalars.

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
  top = _max_last(logits)
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


def sample_chunk(logits_fn: Callable, rng: jax.Array, x_init: jax.Array,
                 num_steps: int, num_bins: int, y: Optional[jax.Array] = None,
                 pinned: Optional[jax.Array] = None,
                 clean: Optional[jax.Array] = None):
  """Runs the reverse process from x_init (level 1) down to x_0.

  logits_fn(x_t [B,H,A], level () or [B,H]) -> logits [B,H,A,K] (guidance
  tilts them: `tilt_logits`). Optional, with the previous chunk's bins y
  [B,H,A]: `pinned` [H] bool positions follow y corrupted to the current
  level and end exactly at y; `clean` [B,H] bool positions are y with level 0
  at every step (training-time RTC).
  Returns (x_0 bins [B,H,A], the last step's logits [B,H,A,K]).
  """
  levels = 1.0 - jnp.arange(num_steps + 1, dtype=jnp.float32) / num_steps

  def constrain(x, t, key):
    # One level for the batch unless some tokens are clean (then [B, H]).
    level = t
    if pinned is not None:
      x = jnp.where(pinned[None, :, None], corrupt(key, y, t, num_bins), x)
    if clean is not None:
      x = jnp.where(clean[..., None], y, x)
      level = jnp.where(clean, 0.0, t)
    return x, level

  def step(x, k):
    t, s = levels[k], levels[k + 1]
    key = jax.random.fold_in(rng, k)
    pin_key, sample_key = jax.random.split(key)
    x, level = constrain(x, t, pin_key)
    logits = logits_fn(x, level)
    return reverse_sample(sample_key, logits, x, t, s), logits

  # All steps but the last in a scan; the last also returns its logits.
  x, _ = jax.lax.scan(lambda x, k: (step(x, k)[0], None), x_init,
                      jnp.arange(num_steps - 1))
  x, logits = step(x, num_steps - 1)
  if pinned is not None:
    x = jnp.where(pinned[None, :, None], y, x)
  if clean is not None:
    x = jnp.where(clean[..., None], y, x)
  return x, logits


# -- the policy ------------------------------------------------------------------


class BinEmbedding(hk.Module):
  """x [B,H,A] bins -> concatenated per-dimension embeddings [B,H,A*E], as a
  backbone.TableLookup (the backbone projects them without gathering)."""

  def __init__(self, action_dim, num_bins, dim, name=None):
    super().__init__(name=name)
    self._shape = (action_dim, num_bins, dim)

  def __call__(self, x):
    table = hk.get_parameter('embeddings', self._shape, jnp.float32,
                             init=hk.initializers.TruncatedNormal(1.0))
    return backbone.TableLookup(table, x)


class DiscreteDiffusionPolicy(policy.ChunkPolicy):
  """A discrete-diffusion policy with the flow policy's interface."""

  kind = 'dd'
  chunk_dtype = jnp.int32

  def __init__(self, model_config: ModelConfig, obs_dim: int,
               action_dim: int):
    self.num_bins = k = model_config.num_bins

    def net(obs, x_bins, level, tilt=None):
      tokens = BinEmbedding(action_dim, k, model_config.bin_embedding_dim,
                            name=EMBED)(x_bins)
      extra = None if tilt is None else tilt_terms(*tilt, num_bins=k)
      out = backbone.MixerBackbone(model_config, action_dim * k, name=ROOT)(
          tokens, obs, level, out_extra=extra)
      return out.reshape(out.shape[:2] + (action_dim, k))

    super().__init__(model_config, obs_dim, action_dim, net)

  # -- network ----------------------------------------------------------------

  def logits(self, params, obs, x_bins, t, tilt=None):
    """p_theta(x_0 | x_t) logits [B,H,A,K]; t a scalar, [B] or [B,H].

    `tilt` = (y_bins [B,H,A], weights [H], g) adds `tilt_logits`' guidance
    tilt, computed inside the output layer's matmul (`tilt_terms`).
    """
    if tilt is None:
      return self._apply(params, obs, x_bins, t)
    return self._apply(params, obs, x_bins, t, tilt=tilt)

  def to_bins(self, actions):
    return to_bins(actions, self.num_bins)

  def from_bins(self, bins):
    return from_bins(bins, self.num_bins)

  def _start(self, rng, obs, noise):
    shape = (obs.shape[0], self.horizon, self.action_dim)
    if noise is None:
      return jax.random.randint(rng, shape, 0, self.num_bins, jnp.int32)
    if noise.shape != shape:
      raise ValueError(f'noise must be bins of shape {shape}, got '
                       f'{noise.shape}.')
    return noise.astype(jnp.int32)

  def _decode(self, x0, logits):
    if self.config.expected_value_output:
      p0 = jax.nn.softmax(logits, axis=-1)
      return jnp.sum(p0 * bin_centres(self.num_bins), axis=-1)
    return self.from_bins(x0)

  def _sample(self, params, rng, obs, num_steps, noise, tilt=None,
              **constraints):
    init_rng, rng = jax.random.split(rng)
    x_init = self._start(init_rng, obs, noise)
    if tilt is None:
      logits_fn = lambda x, level: self.logits(params, obs, x, level)
    else:
      logits_fn = lambda x, level: self.logits(params, obs, x, level, tilt)
    return sample_chunk(logits_fn, rng, x_init, num_steps, self.num_bins,
                        **constraints)

  # -- sampling ---------------------------------------------------------------

  def action(self, params, rng, obs, num_steps: int, noise=None):
    """A chunk [B, H, A] (bin centres) from the reverse process."""
    x0, logits = self._sample(params, rng, obs, num_steps, noise)
    return self._decode(x0, logits)

  def realtime_action(self, params, rng, obs, num_steps: int, prev_chunk,
                      inference_delay, prefix_attention_horizon,
                      prefix_attention_schedule: str = 'exp',
                      max_guidance_weight: float = 3.0, noise=None):
    """RTC for discrete diffusion: pin w = 1 positions, tilt 0 < w < 1."""
    w = prefix.prefix_weights(inference_delay, prefix_attention_horizon,
                              self.horizon, prefix_attention_schedule)
    y = self.to_bins(prev_chunk)
    pinned = w >= 1.0  # prefix_weights gives exactly 1 at executed positions.
    x0, logits = self._sample(params, rng, obs, num_steps, noise,
                              tilt=(y, w, max_guidance_weight), y=y,
                              pinned=pinned)
    out = self._decode(x0, logits)
    # Pinned positions return the previous chunk's bins exactly.
    return jnp.where(pinned[None, :, None], self.from_bins(y), out)

  def bid_action(self, params, rng, obs, num_steps: int, prev_chunk,
                 inference_delay, prefix_attention_horizon, n_samples: int,
                 weak_params=None, bid_k: Optional[int] = None):
    weak = None
    if weak_params is not None:
      weak = functools.partial(self._sampler, weak_params, num_steps)
    return bid.bid_action(
        functools.partial(self._sampler, params, num_steps), rng, obs,
        prev_chunk, inference_delay, prefix_attention_horizon, n_samples,
        weak, bid_k)

  def _sampler(self, params, num_steps, rng, obs):
    return self.action(params, rng, obs, num_steps)

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """The first d positions are the previous chunk's bins at level 0."""
    clean = jnp.arange(self.horizon)[None, :] < inference_delay
    clean = jnp.broadcast_to(clean, (obs.shape[0], self.horizon))
    y = self.to_bins(prev_chunk)
    x0, logits = self._sample(params, rng, obs, num_steps, noise, y=y,
                              clean=clean)
    return jnp.where(clean[..., None], self.from_bins(y),
                     self._decode(x0, logits))

  # -- training ---------------------------------------------------------------

  def loss_and_metrics(self, params, rng, obs, action):
    """Cross-entropy against the clean bins (and bin accuracy)."""
    expected = (obs.shape[0], self.horizon, self.action_dim)
    if action.shape != expected:
      raise ValueError(f'action must have shape {expected}, got '
                       f'{action.shape}.')
    batch = obs.shape[0]
    level_rng, noise_rng, delay_rng = jax.random.split(rng, 3)
    x0 = self.to_bins(action)
    level = jax.random.uniform(level_rng, (batch,))
    if self.config.simulated_delay is None:
      token_level = jnp.broadcast_to(level[:, None], (batch, self.horizon))
      covered = jnp.ones((batch, self.horizon), bool)
    else:
      delay = prefix.sample_delays(delay_rng, batch,
                                  self.config.simulated_delay)
      prefix_mask = jnp.arange(self.horizon)[None, :] < delay[:, None]
      token_level = jnp.where(prefix_mask, 0.0, level[:, None])
      covered = ~prefix_mask
    x_t = corrupt(noise_rng, x0, token_level, self.num_bins)
    cond = level if self.config.simulated_delay is None else token_level
    logits = self.logits(params, obs, x_t, cond)
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, x0[..., None], axis=-1)[..., 0]
    weight = jnp.broadcast_to(covered[..., None], nll.shape).astype(
        jnp.float32)
    denom = jnp.maximum(jnp.sum(weight), 1.0)
    loss = jnp.sum(nll * weight) / denom
    correct = (jnp.argmax(logits, axis=-1) == x0).astype(jnp.float32)
    accuracy = jnp.sum(correct * weight) / denom
    return loss, {'cross_entropy': loss, 'bin_accuracy': accuracy}

  def loss(self, params, rng, obs, action):
    return self.loss_and_metrics(params, rng, obs, action)[0]


def make_policy(model, obs_dim: int, action_dim: int):
  """A DiscreteDiffusionPolicy from model options (a dict or ConfigDict)."""
  model = model.to_dict() if hasattr(model, 'to_dict') else dict(model)
  return DiscreteDiffusionPolicy(ModelConfig(**model), obs_dim, action_dim)
