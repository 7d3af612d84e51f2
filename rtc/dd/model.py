r"""Discrete-diffusion action-chunking policy (DESIGN §5), a drop-in sibling of
rtc.flow.model.FlowPolicy on the shared backbone; masking: rtc.dd.masked.

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
  `num_steps` equal steps 1 -> 0; the last yields x_0. Output per
  `model.decode` (rtc.dd.ordinal): its bin centres ('sample'), the expected
  centre under the last step's p_theta, or its most likely bin's centre.
* Ordinal options (rtc.dd.ordinal; off by default): smoothed targets,
  bin-centre input features, an ordinal output basis.
* `realtime_action` (no gradients): prefix weights w (rtc.common.prefix) on
  the previous chunk's bins y. Positions with w = 1 are pinned: at every step
  their token is y forward-corrupted to the current level, and exactly y at
  the end. Positions with 0 < w < 1 are guided: p_theta(x_0) is tilted by
  exp(-g * w * (centre_k - centre(y))^2 / 2), g = `max_guidance_weight`,
  computed as extra inputs of the output layer's matmul (`tilt_terms`).
  The tilt is in action units (g does not depend on K); it acts at every step
  and, through the chunk-to-chunk chain, on every later chunk (README.md,
  "Choosing g": 3 on the quickstart level, g >= 10 hurts). Positions with
  w = 0 are sampled as without guidance. `hard_masking` is the `zeros`
  schedule: pin the first d positions only.
* `bid_action`: rtc.common.bid with `action` as the sampler.
* Training-time RTC (`simulated_delay` = D): per example d in {0..D-1},
  p(d) proportional to e^-d; the first d positions keep their clean tokens
  with per-token level 0 and are left out of the loss.
  `training_time_action` sets them clean from the previous chunk at every
  step (level 0) and returns them exactly.
"""

import dataclasses
from typing import Callable, Optional

import haiku as hk
import jax
import jax.numpy as jnp

from rtc.common import backbone
from rtc.common import bins
from rtc.common import policy
from rtc.common import prefix
from rtc.dd import discrete_rtc
from rtc.dd import ordinal
from rtc.dd import reverse

ROOT, EMBED, HEAD = 'dd', 'dd_embed', 'dd_ordinal_head'
reverse_probs, reverse_mixture = reverse.reverse_probs, reverse.reverse_mixture
reverse_sample, sample_logits = reverse.reverse_sample, reverse.sample_logits
block_size, _max_last = reverse.block_size, reverse.max_last
to_bins, from_bins, bin_centres = bins.to_bins, bins.from_bins, bins.bin_centres
tilt_logits, tilt_terms = bins.tilt_logits, bins.tilt_terms


@dataclasses.dataclass(frozen=True)
class ModelConfig(backbone.MixerConfig):
  num_bins: int = 256
  bin_embedding_dim: int = 32
  # Ordinal options and decoding (rtc.dd.ordinal); the defaults are the
  # seed's model. A run's config.json written before them reads as these.
  target_sigma: float = 0.0
  centre_features: bool = False
  ordinal_head: int = 0
  decode: str = 'sample'

  def __post_init__(self):
    super().__post_init__()
    if self.decode not in ordinal.DECODES:
      raise ValueError(f'model.decode must be one of {ordinal.DECODES}, got '
                       f'{self.decode!r}.')
    if self.target_sigma < 0:
      raise ValueError('model.target_sigma must be >= 0 (bin widths; 0 = '
                       f'one-hot), got {self.target_sigma}.')
    if self.ordinal_head < 0 or self.ordinal_head == 1:
      raise ValueError('model.ordinal_head must be 0 (off) or >= 2, got '
                       f'{self.ordinal_head}.')
    if self.num_bins < 2:
      raise ValueError(f'model.num_bins must be >= 2, got {self.num_bins}.')
    if self.bin_embedding_dim < 1:
      raise ValueError('model.bin_embedding_dim must be >= 1, got '
                       f'{self.bin_embedding_dim}.')


# -- the forward process (bins: rtc.common.bins) -------------------------------


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
                 num_steps: int, num_bins: int, y: Optional[jax.Array] = None,
                 pinned: Optional[jax.Array] = None,
                 clean: Optional[jax.Array] = None,
                 start: Optional[jax.Array] = None,
                 calls: Optional[jax.Array] = None):
  """Runs the reverse process from x_init (level 1) down to x_0.

  logits_fn(x_t [B,H,A], level () or [B,H]) -> logits [B,H,A,K] (guidance
  tilts them: `tilt_logits`). Optional, with the previous chunk's bins y
  [B,H,A]: `pinned` [H] bool positions follow y corrupted to the current
  level and end exactly at y; `clean` [B,H] bool positions are y with level 0
  at every step (training-time RTC). `start` [B,H] in (0, 1]: each
  position's level is start * the shared level (per-token levels; the
  reverse step per position; x_init should be at those levels). `calls`
  (may be traced, 1..num_steps): early start, that many equal steps from
  level 1 to 0 instead of num_steps (a loop with a traced trip count).
  Returns (x_0 bins [B,H,A], the last step's logits [B,H,A,K]).
  """
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
    return reverse_sample(sample_key, logits, x, t, s), logits

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
  if pinned is not None:
    x = jnp.where(pinned[None, :, None], y, x)
  if clean is not None:
    x = jnp.where(clean[..., None], y, x)
  return x, logits


# -- the policy ------------------------------------------------------------------


class BinEmbedding(hk.Module):
  """x [B,H,A] bins -> concatenated per-dimension embeddings [B,H,A*E], as a
  backbone.TableLookup (the backbone projects them without gathering)."""

  def __init__(self, action_dim, num_bins, dim, centre_features=False,
               name=None):
    super().__init__(name=name)
    self._shape = (action_dim, num_bins, dim)
    self._centre = centre_features

  def centre_features(self):
    """The fixed bin-centre features added to each dimension's rows."""
    return ordinal.centre_features(*self._shape[1:])

  def __call__(self, x):
    # With centre features the table learns what they miss, from zero.
    init = (jnp.zeros if self._centre else
            hk.initializers.TruncatedNormal(1.0))
    table = hk.get_parameter('embeddings', self._shape, jnp.float32,
                             init=init)
    if self._centre:
      table = table + self.centre_features()[None]
    return backbone.TableLookup(table, x)


class DiscreteDiffusionPolicy(policy.ChunkPolicy):
  """A discrete-diffusion policy with the flow policy's interface."""

  kind = 'dd'
  chunk_dtype = jnp.int32
  embedding = BinEmbedding  # rtc.dd.masked adds a mask token.

  def __init__(self, model_config: ModelConfig, obs_dim: int,
               action_dim: int):
    self.num_bins = k = model_config.num_bins

    def net(obs, x_bins, noise_level, tilt=None):
      tokens = self.embedding(action_dim, k, model_config.bin_embedding_dim,
                              model_config.centre_features, name=EMBED)(x_bins)
      extra = None if tilt is None else tilt_terms(*tilt, num_bins=k)
      with hk.name_scope(HEAD):
        head = ordinal.ordinal_head(model_config.ordinal_head,
                                    model_config.channel_dim, action_dim, k,
                                    f'{ROOT}/out_proj/w')
      with head:
        out = backbone.MixerBackbone(model_config, action_dim * k,
                                     name=ROOT)(tokens, obs, noise_level,
                                                out_extra=extra)
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
    shape = (obs.shape[0], self.chunk_size, self.action_dim)
    if noise is None:
      return jax.random.randint(rng, shape, 0, self.num_bins, jnp.int32)
    if noise.shape != shape:
      raise ValueError(f'noise must be bins of shape {shape}, got '
                       f'{noise.shape}.')
    return noise.astype(jnp.int32)

  def _decode(self, x0, logits):
    return ordinal.decode(x0, logits, self.config.decode)

  def _sample(self, params, rng, obs, num_steps, noise, tilt=None,
              **constraints):
    init_rng, rng = jax.random.split(rng)
    x_init = self._start(init_rng, obs, noise)
    if tilt is None:
      logits_fn = lambda x, t: self.logits(params, obs, x, t)
    else:
      logits_fn = lambda x, t: self.logits(params, obs, x, t, tilt)
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
    """RTC for discrete diffusion: the committed positions (w = 1) come back
    as the previous chunk's bins exactly; 0 < w < 1 are tilted towards them
    (`_guided`: how each variant holds the committed ones while sampling)."""
    w = prefix.prefix_weights(inference_delay, prefix_attention_horizon,
                              self.chunk_size, prefix_attention_schedule)
    y = self.to_bins(prev_chunk)
    # prefix_weights gives exactly 1 at executed positions.
    committed = jnp.broadcast_to((w >= 1.0)[None],
                                 (obs.shape[0], self.chunk_size))
    value = self._guided(params, rng, obs, num_steps, noise, y,
                         (y, w, max_guidance_weight), committed)
    return jnp.where(committed[..., None], self.from_bins(y), value)

  def _guided(self, params, rng, obs, num_steps, noise, y, tilt, committed):
    """Actions [B,H,A] sampled with `tilt`; committed positions [B,H] follow
    y corrupted to the current level ("pinned")."""
    x0, logits = self._sample(params, rng, obs, num_steps, noise, tilt=tilt,
                              y=y, pinned=committed[0])
    return self._decode(x0, logits)

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """The first d positions are the previous chunk's bins at level 0; they
    come back as the committed actions themselves (whatever the decoding)."""
    clean = jnp.arange(self.chunk_size)[None, :] < inference_delay
    clean = jnp.broadcast_to(clean, (obs.shape[0], self.chunk_size))
    y = self.to_bins(prev_chunk)
    x0, logits = self._sample(params, rng, obs, num_steps, noise, y=y,
                              clean=clean)
    return jnp.where(clean[..., None], prev_chunk.astype(jnp.float32),
                     self._decode(x0, logits))

  # -- training ---------------------------------------------------------------

  def loss_and_metrics(self, params, rng, obs, action):
    """Cross-entropy against the clean bins (and bin accuracy)."""
    x0, (noise_level_rng, noise_rng, delay_rng) = self._loss_inputs(
        rng, obs, action)
    batch = x0.shape[0]
    noise_level = jax.random.uniform(noise_level_rng, (batch,))
    prefix_mask = self._training_prefix(delay_rng, batch)
    if prefix_mask is None:
      cond = noise_level
      token_noise_level = jnp.broadcast_to(noise_level[:, None],
                                           (batch, self.chunk_size))
      covered = jnp.ones((batch, self.chunk_size), bool)
    else:
      cond = token_noise_level = jnp.where(prefix_mask, 0.0,
                                           noise_level[:, None])
      covered = ~prefix_mask
    x_t = corrupt(noise_rng, x0, token_noise_level, self.num_bins)
    logits = self.logits(params, obs, x_t, cond)
    return self.cross_entropy(logits, x0, jnp.broadcast_to(
        covered[..., None], x0.shape).astype(jnp.float32))

  def _loss_inputs(self, rng, obs, action):
    """Checks `action`; returns its clean bins x0 [B,H,A] and three keys
    (noise level, corruption, delay)."""
    self.check_action(obs, action)
    return self.to_bins(action), jax.random.split(rng, 3)

  def _training_prefix(self, rng, batch: int):
    """Training-time RTC: [B, H] True at the first d positions, d drawn per
    example; None without model.simulated_delay."""
    if self.config.simulated_delay is None:
      return None
    delay = prefix.sample_delays(rng, batch, self.config.simulated_delay)
    return jnp.arange(self.chunk_size)[None, :] < delay[:, None]

  def cross_entropy(self, logits, x0, weight):
    """(loss, metrics): the mean (smoothed) cross-entropy of `logits`
    [B,H,A,K] against the clean bins x0 [B,H,A], and the bin accuracy, over
    the tokens whose `weight` [B,H,A] is 1 (the others are 0)."""
    nll = ordinal.smoothed_cross_entropy(logits, x0,
                                         self.config.target_sigma)
    denom = jnp.maximum(jnp.sum(weight), 1.0)
    loss = jnp.sum(nll * weight) / denom
    correct = (jnp.argmax(logits, axis=-1) == x0).astype(jnp.float32)
    accuracy = jnp.sum(correct * weight) / denom
    return loss, {'cross_entropy': loss, 'bin_accuracy': accuracy}


def _legacy_model_options(model: dict) -> dict:
  """Runs written before model.decode have expected_value_output instead."""
  legacy = model.pop('expected_value_output', None)
  if model.get('decode') is None:
    model['decode'] = 'expected_value' if legacy else 'sample'
  return model


_make_uniform = policy.maker(DiscreteDiffusionPolicy, ModelConfig,
                             _legacy_model_options)


def make_policy(model, obs_dim: int, action_dim: int):
  """A DD policy from model options (a dict or ConfigDict): the seed's
  uniform corruption, or a variant of rtc.dd.masked."""
  model = model.to_dict() if hasattr(model, 'to_dict') else dict(model)
  if model.get('variant') == discrete_rtc.VARIANT:
    return discrete_rtc.make_policy(model, obs_dim, action_dim)
  discrete_rtc.refuse_options(model)  # E.g. early_stop on a uniform run.
  # Variant options are read (and impossible combinations refused) by
  # rtc.dd.masked.
  if {'corruption', 'token_levels', 'unmask_order', 'early_start'} & (
      model.keys()):
    from rtc.dd import masked  # pylint: disable=g-import-not-at-top
    return masked.make_policy(model, obs_dim, action_dim)
  return _make_uniform(model, obs_dim, action_dim)
