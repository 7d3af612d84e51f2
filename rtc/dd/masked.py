r"""Masked (absorbing) discrete diffusion: `model.corruption = 'mask'`.

The sibling of rtc.dd.model's uniform corruption (the default, the seed's),
on the same network, bins, ordinal options and decoding; only the forward
process, the loss and the reverse process differ.

* Tokens: bins 0..K-1 and a mask token K (the bin embedding gets a K+1-th
  row, learned; with centre features it has none). The output stays K logits.
* Forward process: each token of a chunk is masked with probability t, the
  others stay clean (`mask_tokens`). t ~ U[0, 1) per example; the network is
  conditioned on t.
* Loss: cross-entropy (rtc.dd.ordinal, so `target_sigma` applies) on the
  masked tokens only, every masked token of the batch weighted 1 and
  averaged over them. This drops the ELBO's 1/t weight (MDLM, Sahoo et al.
  2024) as MaskGIT-style training does: with t ~ U[0, 1) the 1/t factor puts
  large, noisy weights on the few tokens masked at small t. Unmasked tokens
  never enter the loss (their logits are not trained), and with
  `simulated_delay` the first d positions stay clean at level 0 as in the
  uniform model.
* Reverse step from t to s < t (exact for the absorbing process with an
  x_0-prediction): a masked token is unmasked with probability (t - s) / t,
  to a bin drawn from p_theta(x_0 | x_t); unmasked tokens never change. At
  s = 0 every token is unmasked, so `num_flow_steps` steps end clean.
  `model.unmask_order = 'confidence'` instead unmasks, per chunk, the
  round(n (t - s) / t) of its n masked tokens whose drawn bin is most likely
  under p_theta (MaskGIT's order), the rest at the last step.
* Decoding: a token's action is decoded (`model.decode`) from the logits of
  the step that unmasked it; later logits at unmasked tokens are untrained.
* `realtime_action` / `hard_masking`: committed positions (prefix weight 1)
  are the previous chunk's bins, unmasked from the first step, and come back
  exactly. Positions with 0 < w < 1 follow `model.soft_positions`:
  'tilt' (default): they start masked like the rest; when they are unmasked
  their bin is drawn from p_theta tilted towards the previous chunk exactly
  as in the uniform model (`rtc.dd.model.tilt_terms`, weight g * w).
  'given': each starts as the previous chunk's bin (unmasked, kept) with
  probability w, else masked, i.e. at level 1 - w of the absorbing process,
  and nothing is tilted. w = 0 positions are sampled without guidance.
* Early start (`model.early_start`, default on): with a fraction f of the
  positions committed, the process starts at level 1 - f (the share of
  masked tokens it then holds) and takes max(1, round(N (1 - f))) equal steps
  to 0 instead of N: at H = 8, d = 3, N = 5, 3 network calls (0.6x naive).
  Inference delays may be traced, so the steps are a loop whose trip count
  is traced (`lax.fori_loop`; a `lax.cond` per step cost more at batch 1).
* `training_time_action`: the first d positions are the previous chunk's
  bins at level 0, unmasked throughout (with early start as above).
* BID: rtc.common.bid over `action`, as for the uniform model.
"""

import dataclasses

import jax
import jax.numpy as jnp

from rtc.dd import model as dd_model
from rtc.dd import ordinal
from rtc.dd import reverse
from rtc.dd import token_levels

CORRUPTIONS = ('uniform', 'mask')
ORDERS = ('random', 'confidence')
SOFT_RULES = token_levels.SOFT_RULES
MASK_ONLY = ('unmask_order', 'early_start')
# Sampling options that per-token levels (rtc.dd.token_levels) have too.
TOKEN_LEVEL_OPTIONS = ('early_start', 'soft_positions')


@dataclasses.dataclass(frozen=True)
class MaskedConfig(dd_model.ModelConfig):
  corruption: str = 'mask'
  unmask_order: str = 'random'
  early_start: bool = True
  soft_positions: str = 'tilt'

  def __post_init__(self):
    super().__post_init__()
    if self.corruption != 'mask':
      raise ValueError("MaskedConfig needs model.corruption = 'mask', got "
                       f'{self.corruption!r}.')
    if self.unmask_order not in ORDERS:
      raise ValueError(f'model.unmask_order must be one of {ORDERS}, got '
                       f'{self.unmask_order!r}.')
    if self.soft_positions not in SOFT_RULES:
      raise ValueError(f'model.soft_positions must be one of {SOFT_RULES}, '
                       f'got {self.soft_positions!r}.')


def mask_tokens(rng, x0: jax.Array, t, num_bins: int):
  """Masks each token with probability t (broadcast against x0's leading
  axes). Returns (x_t with mask token `num_bins`, masked bool)."""
  t = jnp.asarray(t, jnp.float32)
  t = t.reshape(t.shape + (1,) * (x0.ndim - t.ndim))
  masked = jax.random.uniform(rng, x0.shape) < t
  return jnp.where(masked, num_bins, x0), masked


def unmask_chunk(logits_fn, rng, x: jax.Array, num_steps: int, num_bins: int,
                 decode: str, order: str = 'random', start=1.0, calls=None):
  """The reverse process from `x` [B,H,A] (mask token `num_bins`) to clean.

  logits_fn(x, t) -> logits [B,H,A,K]. Runs `calls` (default num_steps,
  may be traced, <= num_steps) equal steps from level `start` to 0 (with
  `calls` given, as a loop with that trip count).
  Returns (bins [B,H,A], decoded actions [B,H,A]; tokens unmasked on entry
  keep their bins and decode to 0, the caller fills them).
  """
  full = calls is None
  calls = num_steps if full else calls
  start = jnp.asarray(start, jnp.float32)

  def step(carry, k):
    x, value = carry
    j = (k - (num_steps - calls)).astype(jnp.float32)
    t = start * (1.0 - j / calls)
    s = jnp.maximum(start * (1.0 - (j + 1.0) / calls), 0.0)
    draw_key, unmask_key = jax.random.split(jax.random.fold_in(rng, k))
    logits = logits_fn(x, t)
    drawn = reverse.sample_logits(draw_key, logits)
    masked = x == num_bins
    frac = jnp.where(t > 0, (t - s) / jnp.where(t > 0, t, 1.0), 1.0)
    if order == 'random':
      u = jax.random.uniform(unmask_key, x.shape)
      unmask = masked & ((u < frac) | (s <= 0))
    else:
      logp = jax.nn.log_softmax(logits, axis=-1)
      conf = jnp.take_along_axis(logp, drawn[..., None], -1)[..., 0]
      flat = jnp.where(masked, conf, -jnp.inf).reshape(x.shape[0], -1)
      rank = jnp.argsort(jnp.argsort(-flat, axis=-1), axis=-1)
      count = jnp.sum(masked.reshape(x.shape[0], -1), axis=-1)
      n = jnp.where(s <= 0, count, jnp.round(count * frac))
      unmask = masked & (rank < n[:, None]).reshape(x.shape)
    value = jnp.where(unmask, ordinal.decode(drawn, logits, decode), value)
    return jnp.where(unmask, drawn, x), value

  value = jnp.zeros(x.shape, jnp.float32)
  if full:
    (x, value), _ = jax.lax.scan(lambda c, k: (step(c, k), None),
                                 (x, value), jnp.arange(num_steps))
  else:  # A loop over the last `calls` steps (a traced trip count).
    first = (num_steps - calls).astype(jnp.int32)
    x, value = jax.lax.fori_loop(first, num_steps,
                                 lambda k, c: step(c, k), (x, value))
  return x, value


class MaskEmbedding(dd_model.BinEmbedding):
  """BinEmbedding with a K+1-th row per action dimension: the mask token."""

  def __init__(self, action_dim, num_bins, dim, centre_features=False,
               name=None):
    super().__init__(action_dim, num_bins + 1, dim, centre_features, name)
    self._bins = num_bins

  def centre_features(self):
    """The bins' centre features; the mask token's row gets none."""
    feats = ordinal.centre_features(self._bins, self._shape[-1])
    return jnp.pad(feats, ((0, 1), (0, 0)))


class MaskedDiffusionPolicy(dd_model.DiscreteDiffusionPolicy):
  """Discrete diffusion with masked corruption; the flow policy's interface."""

  embedding = MaskEmbedding

  @property
  def mask_token(self) -> int:
    return self.num_bins

  def _start(self, rng, obs, noise):
    shape = (obs.shape[0], self.chunk_size, self.action_dim)
    if noise is None:
      return jnp.full(shape, self.mask_token, jnp.int32)
    if noise.shape != shape:
      raise ValueError(f'noise must be tokens (bins or the mask token '
                       f'{self.mask_token}) of shape {shape}, got '
                       f'{noise.shape}.')
    return noise.astype(jnp.int32)

  def _unmask(self, params, rng, x, obs, num_steps, tilt=None, clean=None,
              committed=None):
    """x [B,H,A] -> actions; `committed` [B,H] positions given (early start
    counts them), `clean` [B,H] also get level 0 (training-time RTC)."""
    def logits_fn(x, t):
      noise_level = t if clean is None else jnp.where(clean, 0.0, t)
      if tilt is None:
        return self.logits(params, obs, x, noise_level)
      return self.logits(params, obs, x, noise_level, tilt)

    start, calls = 1.0, None
    if self.config.early_start and committed is not None:
      # One start for the batch: the least committed chunk's share.
      start = 1.0 - jnp.min(jnp.mean(committed.astype(jnp.float32), -1))
      calls = jnp.clip(jnp.round(num_steps * start), 1, num_steps)
    return unmask_chunk(logits_fn, rng, x, num_steps, self.num_bins,
                        self.config.decode, self.config.unmask_order, start,
                        calls)

  def action(self, params, rng, obs, num_steps: int, noise=None):
    """A chunk [B, H, A] (decoded bins) from the all-masked chunk."""
    init_rng, rng = jax.random.split(rng)
    x = self._start(init_rng, obs, noise)
    bins, value = self._unmask(params, rng, x, obs, num_steps)
    given = x != self.mask_token  # Tokens unmasked in `noise`.
    return jnp.where(given, self.from_bins(bins), value)

  def _guided(self, params, rng, obs, num_steps, noise, y, tilt, committed):
    """Committed positions unmasked from the start; 0 < w < 1 tilted when
    unmasked ('tilt') or given from the start with probability w
    ('given')."""
    init_rng, given_rng, rng = jax.random.split(rng, 3)
    if self.config.soft_positions == 'given':
      w = tilt[1]
      given = committed | (jax.random.uniform(given_rng, committed.shape)
                           < w[None, :])
      tilt = None
    else:
      given = committed
    x = jnp.where(given[..., None], y, self._start(init_rng, obs, noise))
    _, value = self._unmask(params, rng, x, obs, num_steps, tilt=tilt,
                            committed=given)
    return jnp.where(given[..., None], self.from_bins(y), value)

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """The first d positions are the previous chunk's bins at level 0."""
    clean = jnp.arange(self.chunk_size)[None, :] < inference_delay
    clean = jnp.broadcast_to(clean, (obs.shape[0], self.chunk_size))
    y = self.to_bins(prev_chunk)
    init_rng, rng = jax.random.split(rng)
    x = jnp.where(clean[..., None], y, self._start(init_rng, obs, noise))
    _, value = self._unmask(params, rng, x, obs, num_steps, clean=clean,
                            committed=clean)
    return jnp.where(clean[..., None], self.from_bins(y), value)

  def loss_and_metrics(self, params, rng, obs, action):
    """Cross-entropy on the masked tokens (and their bin accuracy)."""
    x0, (noise_level_rng, mask_rng, delay_rng) = self._loss_inputs(
        rng, obs, action)
    batch = x0.shape[0]
    noise_level = jax.random.uniform(noise_level_rng, (batch,))
    cond = noise_level
    prefix_mask = self._training_prefix(delay_rng, batch)
    if prefix_mask is not None:
      cond = jnp.where(prefix_mask, 0.0, noise_level[:, None])
    x_t, masked = mask_tokens(mask_rng, x0, cond, self.num_bins)
    logits = self.logits(params, obs, x_t, cond)
    return self.cross_entropy(logits, x0, masked.astype(jnp.float32))


def make_policy(model, obs_dim: int, action_dim: int):
  """A DD policy from model options with `corruption` (a dict): uniform
  (with shared or per-token levels, rtc.dd.token_levels) or masked."""
  model = dict(model)
  corruption = model.pop('corruption', 'uniform')
  if corruption not in CORRUPTIONS:
    raise ValueError(f'model.corruption must be one of {CORRUPTIONS}, got '
                     f'{corruption!r}.')
  for k in TOKEN_LEVEL_OPTIONS:  # Unset: the variant's default.
    if k in model and model[k] is None:
      model.pop(k)
  token_mode = model.pop('token_levels', None) or 'shared'
  share = model.pop('token_level_share', None)
  if token_mode not in token_levels.TOKEN_LEVELS:
    raise ValueError(f'model.token_levels must be one of '
                     f'{token_levels.TOKEN_LEVELS}, got {token_mode!r}.')
  if token_mode == 'shared' and share is not None:
    raise ValueError("model.token_level_share applies only to "
                     "model.token_levels = 'independent'; remove it.")
  if corruption == 'mask' and token_mode != 'shared':
    raise ValueError("model.token_levels = 'independent' is built for "
                     "model.corruption = 'uniform' only; set one of them "
                     'back.')
  if corruption == 'uniform':
    # Per-token levels have early start and soft positions too.
    allowed = TOKEN_LEVEL_OPTIONS if token_mode == 'independent' else ()
    extra = [k for k in MASK_ONLY + ('soft_positions',)
             if model.get(k) is not None and k not in allowed]
    if extra:
      also = (" or model.token_levels = 'independent'"
              if extra[0] in TOKEN_LEVEL_OPTIONS else '')
      raise ValueError(f'model.{extra[0]} applies only to model.corruption '
                       f"= 'mask'{also}; remove it or set corruption to "
                       "'mask'.")
    for k in MASK_ONLY + ('soft_positions',):
      if k not in allowed:
        model.pop(k, None)
    if token_mode == 'independent':
      model.update(token_levels=token_mode, token_level_share=(
          0.5 if share is None else share))
      return token_levels.TokenLevelsPolicy(
          token_levels.TokenLevelsConfig(**model), obs_dim, action_dim)
    return dd_model.make_policy(model, obs_dim, action_dim)
  legacy = model.pop('expected_value_output', None)  # As rtc.dd.model reads.
  if model.get('decode') is None:
    model['decode'] = 'expected_value' if legacy else 'sample'
  return MaskedDiffusionPolicy(MaskedConfig(**model), obs_dim, action_dim)

