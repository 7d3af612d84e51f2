r"""The discrete-diffusion policy's shared base (DESIGN §5): options, network,
logits, cross-entropy, the realtime entry point and the rules every variant
shares. The variants are leaves beside it (rtc.dd.uniform, rtc.dd.masked,
rtc.dd.token_levels), chosen by `model.variant` in rtc.dd.model.

Notation: K bins, corruption level t in [0, 1] (t = 0 clean, t = 1 fully
corrupted), chunk tokens x [B, H, A] of bin indices.

* Bins (rtc.common.core.bins): K equal bins on [-1, 1]; `to_bins(a) =
  clip(floor((a + 1) / 2 * K), 0, K - 1)`, `from_bins(i) = -1 + (i + 1/2) *
  2 / K` (bin centres); the round trip is off by at most 1/K inside [-1, 1].
* Network: the backbone (rtc.common.core.backbone) with token features the
  concatenated learned embeddings of a position's A tokens (one table per
  action dimension, `BinEmbedding`; a leaf may add rows, e.g. a mask token),
  conditioned on the corruption level (a scalar, [B] or per token [B, H]),
  output A * K logits per position: p_theta(x_0 | x_t).
* Guidance tilt (`logits(..., tilt=(y, w, g))`): p_theta(x_0) tilted by
  exp(-g * w * (centre_k - centre(y))^2 / 2), computed as extra inputs of
  the output layer's matmul (rtc.common.core.bins.tilt_terms). In action units
  (g does not depend on K).
* Loss (`loss_and_metrics`): a level per example (or per token, the leaf's
  `_draw_levels`), the leaf's forward process (`_corrupt`), cross-entropy
  (rtc.dd.ordinal, so `target_sigma` applies) of the logits against the
  clean bins over the tokens the leaf's loss covers; metric: bin accuracy.
  Training-time RTC (`simulated_delay` = D): per example d in {0..D-1},
  p(d) proportional to e^-d; the first d positions keep their clean tokens
  at level 0 and are left out of the loss.
* `realtime_action`: prefix weights w (rtc.common.core.prefix) on the previous
  chunk's bins y; positions with w = 1 are committed and come back exactly
  as y's bin centres; how the others are sampled is the leaf's `_guided`.
* Early start (`early_start`), one rule for every leaf that offers it: with
  a share f of the positions committed (the least committed chunk of the
  batch), max(1, round(N (1 - f))) equal steps instead of N.
"""

import dataclasses

import haiku as hk
import jax
import jax.numpy as jnp

from rtc.common.core import backbone
from rtc.common.core import bins
from rtc.common.core import policy
from rtc.common.core import prefix
from rtc.dd import ordinal
from rtc.dd import reverse

ROOT, EMBED, HEAD = 'dd', 'dd_embed', 'dd_ordinal_head'
# realtime's rules for soft positions (0 < w < 1), for the leaves that offer
# `model.soft_positions`: tilt them, or start them from the previous chunk.
SOFT_RULES = ('tilt', 'given')


@dataclasses.dataclass(frozen=True)
class ModelConfig(backbone.MixerConfig):
  """The options every DD variant has (a leaf's config adds its own)."""
  num_bins: int = 256
  bin_embedding_dim: int = 32
  # Ordinal options and decoding (rtc.dd.ordinal); the defaults are the
  # seed's model. A run's config.json written before them reads as these.
  target_sigma: float = 0.0
  centre_features: bool = False
  ordinal_head: int = 0
  decode: str = 'sample'
  # Which leaf (rtc.dd.model.VARIANTS); each leaf's config sets its own name
  # as the default.
  variant: str = 'uniform'

  def __post_init__(self):
    super().__post_init__()
    check_choice('decode', self.decode, ordinal.DECODES)
    for name, ok, rule in (
        ('target_sigma', self.target_sigma >= 0,
         '>= 0 (bin widths; 0 = one-hot)'),
        ('ordinal_head', self.ordinal_head == 0 or self.ordinal_head >= 2,
         '0 (off) or >= 2'),
        ('num_bins', self.num_bins >= 2, '>= 2'),
        ('bin_embedding_dim', self.bin_embedding_dim >= 1, '>= 1')):
      if not ok:
        raise ValueError(f'model.{name} must be {rule}, got '
                         f'{getattr(self, name)}.')


def check_choice(name: str, value, choices) -> None:
  """Raises one line naming `model.<name>` unless `value` is in `choices`."""
  if value not in choices:
    raise ValueError(f'model.{name} must be one of {tuple(choices)}, got '
                     f'{value!r}.')


def early_start(committed: jax.Array, num_steps: int):
  """Early start: (free, calls). `free` is the share of positions not
  committed ([B, H] bool) in the least committed chunk of the batch, `calls`
  max(1, round(num_steps * free)) (may be traced)."""
  free = 1.0 - jnp.min(jnp.mean(committed.astype(jnp.float32), -1))
  return free, jnp.clip(jnp.round(num_steps * free), 1, num_steps)


class BinEmbedding(hk.Module):
  """x [B,H,A] tokens -> concatenated per-dimension embeddings [B,H,A*E], as
  a backbone.TableLookup (the backbone projects them without gathering).
  `extra_rows` rows follow the K bins' (e.g. a mask token); they get no
  centre features."""

  def __init__(self, action_dim, num_bins, dim, centre_features=False,
               extra_rows=0, name=None):
    super().__init__(name=name)
    self._bins, self._extra = num_bins, extra_rows
    self._shape = (action_dim, num_bins + extra_rows, dim)
    self._centre = centre_features

  def centre_features(self):
    """The fixed bin-centre features added to each dimension's rows."""
    feats = ordinal.centre_features(self._bins, self._shape[-1])
    return jnp.pad(feats, ((0, self._extra), (0, 0)))

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
  """The shared part of every DD variant; a leaf defines the forward process
  (`_corrupt`, `_draw_levels`), `action`, `_guided` and
  `training_time_action`."""

  kind = 'dd'
  chunk_dtype = jnp.int32
  extra_tokens = 0  # Embedding rows after the K bins (a mask token: 1).
  trace_flags = staticmethod(reverse.trace_flags)

  def __init__(self, model_config: ModelConfig, obs_dim: int,
               action_dim: int):
    self.num_bins = k = model_config.num_bins

    def net(obs, x_bins, noise_level, tilt=None):
      tokens = BinEmbedding(action_dim, k, model_config.bin_embedding_dim,
                            model_config.centre_features, self.extra_tokens,
                            name=EMBED)(x_bins)
      extra = None if tilt is None else bins.tilt_terms(*tilt, num_bins=k)
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

    `tilt` = (y_bins [B,H,A], weights [H], g) adds `bins.tilt_logits`'
    guidance tilt, computed inside the output layer's matmul.
    """
    if tilt is None:
      return self._apply(params, obs, x_bins, t)
    return self._apply(params, obs, x_bins, t, tilt=tilt)

  def to_bins(self, actions):
    return bins.to_bins(actions, self.num_bins)

  def from_bins(self, x):
    return bins.from_bins(x, self.num_bins)

  def _decode(self, x0, logits):
    return ordinal.decode(x0, logits, self.config.decode)

  def _check_noise(self, obs, noise, what: str = 'bins'):
    """`noise` (starting tokens) as int32 [B,H,A], checked; None stays."""
    shape = (obs.shape[0], self.chunk_size, self.action_dim)
    if noise is not None and noise.shape != shape:
      raise ValueError(f'noise must be {what} of shape {shape}, got '
                       f'{noise.shape}.')
    return None if noise is None else noise.astype(jnp.int32)

  def _clean_prefix(self, obs, inference_delay):
    """[B, H] True at the first `inference_delay` positions."""
    clean = jnp.arange(self.chunk_size)[None, :] < inference_delay
    return jnp.broadcast_to(clean, (obs.shape[0], self.chunk_size))

  # -- sampling ---------------------------------------------------------------

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
    # The positions the rollout uses: d committed + s executed.
    stop = jnp.arange(self.chunk_size) < (
        inference_delay + self.chunk_size - prefix_attention_horizon)
    value = self._guided(params, rng, obs, num_steps, noise, y,
                         (y, w, max_guidance_weight), committed, stop)
    return jnp.where(committed[..., None], self.from_bins(y), value)

  def _guided(self, params, rng, obs, num_steps, noise, y, tilt, committed,
              stop=None):
    """Actions [B,H,A] sampled with `tilt` = (y, w [H], g), holding the
    `committed` [B,H] positions to y (the leaf's rule); `stop` [H]: the
    positions < d + s that the rollout uses (a leaf with early stop may
    leave the others to an earlier step)."""
    raise NotImplementedError

  # -- training ---------------------------------------------------------------

  def loss_and_metrics(self, params, rng, obs, action):
    """Cross-entropy against the clean bins (and bin accuracy) over the
    tokens the leaf's forward process leaves in the loss."""
    self.check_action(obs, action)
    x0 = self.to_bins(action)
    level_rng, noise_rng, delay_rng = jax.random.split(rng, 3)
    batch = x0.shape[0]
    level = self._draw_levels(level_rng, batch)
    covered = jnp.ones(x0.shape, jnp.float32)
    prefix_mask = self._training_prefix(delay_rng, batch)
    if prefix_mask is not None:
      level = jnp.where(prefix_mask, 0.0, jnp.broadcast_to(
          level.reshape(batch, -1), prefix_mask.shape))
      covered = jnp.broadcast_to(~prefix_mask[..., None],
                                 x0.shape).astype(jnp.float32)
    x_t, weight = self._corrupt(noise_rng, x0, level)
    logits = self.logits(params, obs, x_t, level)
    return self.cross_entropy(logits, x0, covered * weight)

  def _draw_levels(self, rng, batch: int) -> jax.Array:
    """Training levels: one per example [B] (a leaf may draw [B, H])."""
    return jax.random.uniform(rng, (batch,))

  def _corrupt(self, rng, x0, level):
    """The forward process at `level`: (x_t [B,H,A], loss weight [B,H,A])."""
    raise NotImplementedError

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
