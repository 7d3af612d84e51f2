r"""DiscreteRTC's recipe as a DD variant: `model.variant = 'discrete_rtc'`.

A re-creation, in rtc's policy contract, of the discrete-diffusion policy of
DiscreteRTC (arXiv 2604.25050; outsider86/DiscreteRTC, src/model_dd.py, its
published values from paper/checkpoints/model_config.json and
paper/stats/eval_config.json). Shape letters: rtc.common.core.policy.

* Tokens: K = 512 bins (`num_bins`, published 512) on [-1, 1]
  (rtc.common.core.bins) plus a mask token K. No time input: the mask is the only
  noise signal.
* Network (module root `discrete_rtc`): one token per (position, action
  dimension), its bin embedding (one [K + 1, E] table, E = `bin_embedding_dim`,
  None: C / 2 as published) concatenated with the observation and projected
  to C channels (`in_proj`); the A tokens of a position are packed into one
  chunk token by a Linear [A C -> C] (`pack_tokens`), so the mixer sees H
  tokens as flow does. The backbone's mixer blocks (rtc.common.core.backbone) are
  conditioned on a learned vector `null_cond` [C] (zeros at init) in place of
  the time embedding; final adaLN from it, output A K logits per position.
* Training: per example u ~ U[0, 1), mask ratio 1 - cos(pi u / 2) (clipped
  to [1e-6, 1]); round(n ratio) of the n maskable tokens (at least 1) are
  masked, chosen uniformly. Loss: cross-entropy on the masked tokens,
  averaged per example then over the batch, plus `l1_loss_weight` (0.1
  published) times the mean |E_p[bin centre] - action| over all tokens (as
  the published code computes it). With `simulated_delay` the first d
  positions (d per example, rtc.common.core.prefix) are never masked.
* Sampling: MaskGIT (rtc.dd.maskgit) from the all-masked chunk, cosine
  schedule, draws at temperature 1, choice temperature `choice_temperature`
  (0 deterministic: the published evaluation's 0.0). Actions are the final
  bins' centres.
* `realtime_action`: the first d positions are the previous chunk's bins
  (given, never masked) and come back exactly; the rest is decoded. Prefix
  weights below 1 are not used (the published method), so `hard_masking` is
  the same method. `early_stop`: decoding ends once positions < d + s
  (s = H - prefix_attention_horizon) are unmasked: the rollout executes
  positions d..s-1 and commits s..s+d-1, so only those are used; later
  positions take their last draw. `adaptive_unmasking`:
  max(1, floor(N (H - d) / H)) steps instead of N.
* `training_time_action`: as realtime without early stop (s is unknown).
* BID: rtc.common.core.bid over `action` (ChunkPolicy.bid_action).
"""

import dataclasses
from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp

from rtc.common.core import backbone
from rtc.common.core import bins
from rtc.common.core import policy
from rtc.common.core import prefix
from rtc.dd import maskgit
from rtc.dd import reverse

VARIANT = ROOT = 'discrete_rtc'
MAX_BINS = 4096  # Logits are [B, H, A, K]; more bins than this is a typo.


@dataclasses.dataclass(frozen=True)
class DiscreteRTCConfig(backbone.MixerConfig):
  variant: str = VARIANT
  num_bins: int = 512  # Published K.
  # The bin embedding's width; None: channel_dim // 2 (published).
  bin_embedding_dim: Optional[int] = None
  l1_loss_weight: float = 0.1  # Published auxiliary L1 weight.
  # MaskGIT choice temperature tau (0: deterministic, published eval).
  choice_temperature: float = 0.0
  # Realtime: stop once positions < d + s are unmasked (published method
  # `discrete_rtc`: on).
  early_stop: bool = True
  # Realtime: N (H - d) / H steps instead of N (published
  # `adaptive_discrete_rtc`: on, `discrete_rtc`: off).
  adaptive_unmasking: bool = False

  def __post_init__(self):
    super().__post_init__()
    if self.variant != VARIANT:
      raise ValueError(f"model.variant must be '{VARIANT}' for this policy, "
                       f'got {self.variant!r}.')
    if not 2 <= self.num_bins <= MAX_BINS:
      raise ValueError(f'model.num_bins must be in [2, {MAX_BINS}], got '
                       f'{self.num_bins}.')
    if self.bin_embedding_dim is not None and self.bin_embedding_dim < 1:
      raise ValueError('model.bin_embedding_dim must be >= 1 or unset, got '
                       f'{self.bin_embedding_dim}.')
    if not self.l1_loss_weight >= 0:
      raise ValueError('model.l1_loss_weight must be >= 0, got '
                       f'{self.l1_loss_weight}.')
    if not self.choice_temperature >= 0:
      raise ValueError('model.choice_temperature must be >= 0 (0: '
                       f'deterministic), got {self.choice_temperature}.')

  @property
  def embedding_dim(self) -> int:
    return self.bin_embedding_dim or self.channel_dim // 2


class DiscreteRTCNet(hk.Module):
  """obs [B, O], tokens [B, H, A] (mask token K) -> logits [B, H, A, K]."""

  def __init__(self, config: DiscreteRTCConfig, action_dim: int,
               name: str = ROOT):
    super().__init__(name=name)
    self._config = config
    self._action_dim = action_dim

  def __call__(self, obs, x):
    cfg, a = self._config, self._action_dim
    c, e, k = cfg.channel_dim, cfg.embedding_dim, cfg.num_bins
    batch, chunk_size = x.shape[:2]
    table = hk.get_parameter('bin_embed', [k + 1, e], jnp.float32,
                             init=hk.initializers.TruncatedNormal(1.0))
    init = hk.initializers.VarianceScaling(1.0, 'fan_in', 'truncated_normal')
    w = hk.get_parameter('in_proj_w', [e + obs.shape[-1], c], jnp.float32,
                         init=init)
    b = hk.get_parameter('in_proj_b', [c], jnp.float32, init=jnp.zeros)
    # in_proj(concat(embed(x), obs)) per (position, dimension) token, exact:
    # the embedding half through the projected table, the observation half
    # once per example.
    tokens = jnp.take(table @ w[:e], x, axis=0)  # [B, H, A, C]
    tokens = tokens + (obs @ w[e:] + b)[:, None, None, :]
    h = hk.Linear(c, name='pack_tokens')(
        tokens.reshape(batch, chunk_size, a * c))
    cond = hk.get_parameter('null_cond', [c], jnp.float32,
                            init=jnp.zeros)[None]  # [1, C]: every example.
    for i in range(cfg.num_layers):
      h = backbone.MixerBlock(cfg.token_hidden_dim, cfg.channel_hidden_dim,
                              name=f'block_{i}')(h, cond)
    scale, shift = jnp.split(hk.Linear(2 * c, w_init=jnp.zeros,
                                       name='final_adaln')(cond)[:, None],
                             2, axis=-1)
    h = backbone.layer_norm(h) * (1 + scale) + shift
    out = backbone.OutputProjection(a * k, name='out_proj')(h)
    return out.reshape(batch, chunk_size, a, k)


class DiscreteRTCPolicy(policy.ChunkPolicy):
  """DiscreteRTC's masked DD policy with the flow policy's interface."""

  kind = 'dd'
  chunk_dtype = jnp.int32
  trace_flags = staticmethod(reverse.trace_flags)

  def __init__(self, model_config: DiscreteRTCConfig, obs_dim: int,
               action_dim: int):
    self.num_bins = model_config.num_bins

    def net(obs, x, noise_level):
      del noise_level  # No time input.
      return DiscreteRTCNet(model_config, action_dim)(obs, x)

    super().__init__(model_config, obs_dim, action_dim, net)

  @property
  def mask_token(self) -> int:
    return self.num_bins

  def logits(self, params, obs, x):
    """p_theta(x_0 | x) logits [B, H, A, K] for tokens x [B, H, A]."""
    return self._apply(params, obs, x, 0.0)

  def to_bins(self, actions):
    return bins.to_bins(actions, self.num_bins)

  def from_bins(self, b):
    return bins.from_bins(b, self.num_bins)

  def _start(self, obs, noise):
    shape = (obs.shape[0], self.chunk_size, self.action_dim)
    if noise is None:
      return jnp.full(shape, self.mask_token, jnp.int32)
    if noise.shape != shape:
      raise ValueError(f'noise must be tokens (bins or the mask token '
                       f'{self.mask_token}) of shape {shape}, got '
                       f'{noise.shape}.')
    return noise.astype(jnp.int32)

  def decode(self, params, rng, obs, x, num_steps: int, calls=None,
             stop=None):
    """(tokens [B, H, A], steps run): rtc.dd.maskgit.decode of x."""
    return maskgit.decode(
        lambda x: self.logits(params, obs, x), reverse.sample_logits, rng, x,
        num_steps, self.mask_token, self.config.choice_temperature, calls,
        stop)

  # -- sampling ---------------------------------------------------------------

  def action(self, params, rng, obs, num_steps: int, noise=None):
    """A chunk [B, H, A] (bin centres) decoded from the all-masked chunk."""
    tokens, _ = self.decode(params, rng, obs, self._start(obs, noise),
                            num_steps)
    return self.from_bins(tokens)

  def prefixed(self, params, rng, obs, num_steps: int, prev_chunk,
               inference_delay, execute_horizon=None, noise=None):
    """(chunk [B, H, A], steps run): the first d positions are
    `prev_chunk`'s bins; early stop (if on) at d + `execute_horizon`."""
    fixed = jnp.arange(self.chunk_size) < inference_delay  # [H]
    y = self.to_bins(prev_chunk)
    x = jnp.where(fixed[None, :, None], y, self._start(obs, noise))
    calls = stop = None
    if self.config.adaptive_unmasking:
      unknown = (self.chunk_size - inference_delay) * self.action_dim
      calls = maskgit.adaptive_calls(num_steps, unknown,
                                     self.chunk_size * self.action_dim)
    if self.config.early_stop and execute_horizon is not None:
      stop = jnp.arange(self.chunk_size) < inference_delay + execute_horizon
    tokens, steps = self.decode(params, rng, obs, x, num_steps, calls, stop)
    return self.from_bins(jnp.where(fixed[None, :, None], y, tokens)), steps

  def realtime_action(self, params, rng, obs, num_steps: int, prev_chunk,
                      inference_delay, prefix_attention_horizon,
                      prefix_attention_schedule: str = 'exp',
                      max_guidance_weight: float = 5.0, noise=None):
    """The first d positions fixed to the previous chunk's bins (prefix
    weights below 1 and g are not used)."""
    del prefix_attention_schedule, max_guidance_weight
    execute_horizon = self.chunk_size - prefix_attention_horizon
    return self.prefixed(params, rng, obs, num_steps, prev_chunk,
                         inference_delay, execute_horizon, noise)[0]

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """As `realtime_action`, without early stop; the first d positions are
    `prev_chunk` itself."""
    chunk, _ = self.prefixed(params, rng, obs, num_steps, prev_chunk,
                             inference_delay, None, noise)
    fixed = jnp.arange(self.chunk_size)[None, :, None] < inference_delay
    return jnp.where(fixed, prev_chunk.astype(jnp.float32), chunk)

  # -- training ---------------------------------------------------------------

  def mask_for_training(self, rng, batch: int):
    """[B, H, A] bool: the tokens masked for the loss (module docstring)."""
    ratio_rng, order_rng, delay_rng = jax.random.split(rng, 3)
    shape = (batch, self.chunk_size, self.action_dim)
    maskable = jnp.ones(shape, bool)
    if self.config.simulated_delay is not None:
      delay = prefix.sample_delays(delay_rng, batch,
                                   self.config.simulated_delay)
      maskable = jnp.broadcast_to(
          (jnp.arange(self.chunk_size)[None, :] >= delay[:, None])[..., None],
          shape)
    u = jax.random.uniform(ratio_rng, (batch,))
    ratio = jnp.clip(1.0 - jnp.cos(jnp.pi * 0.5 * u), 1e-6, 1.0)
    total = jnp.sum(maskable.reshape(batch, -1), axis=-1)
    count = jnp.maximum(jnp.round(total * ratio), 1).astype(jnp.int32)
    count = jnp.where(total > 0, count, 0)
    score = jnp.where(maskable, jax.random.uniform(order_rng, shape), jnp.inf)
    rank = jnp.argsort(jnp.argsort(score.reshape(batch, -1), -1), -1)
    return (rank < count[:, None]).reshape(shape) & maskable

  def loss_and_metrics(self, params, rng, obs, action):
    """Masked-token cross-entropy per example + weighted L1 (module
    docstring); metrics: both terms and the masked tokens' bin accuracy."""
    self.check_action(obs, action)
    x0 = self.to_bins(action)
    masked = self.mask_for_training(rng, x0.shape[0])
    logits = self.logits(params, obs, jnp.where(masked, self.mask_token, x0))
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, x0[..., None], -1)[..., 0]
    weight = masked.astype(jnp.float32)
    per_example = jnp.sum(weight, axis=(1, 2)) + 1e-8
    ce = jnp.mean(jnp.sum(nll * weight, axis=(1, 2)) / per_example)
    expected = jnp.sum(jnp.exp(logp) * bins.bin_centres(self.num_bins), -1)
    l1 = jnp.mean(jnp.abs(expected - action))
    correct = (jnp.argmax(logits, -1) == x0).astype(jnp.float32)
    accuracy = jnp.sum(correct * weight) / jnp.maximum(jnp.sum(weight), 1.0)
    loss = ce + self.config.l1_loss_weight * l1
    return loss, {'cross_entropy': ce, 'l1': l1, 'bin_accuracy': accuracy}


# The leaf's two names for the dispatcher (rtc.dd.model.VARIANTS).
Config = DiscreteRTCConfig
Policy = DiscreteRTCPolicy
