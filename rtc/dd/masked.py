r"""Masked (absorbing) discrete diffusion: `model.variant = 'masked'`.

The sibling of rtc.dd.uniform (the default, the seed's), on the same network
(rtc.dd.base), bins, ordinal options and decoding; only the forward
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
  as in the uniform model (rtc.dd.base's tilt, weight g * w).
  'given': each starts as the previous chunk's bin (unmasked, kept) with
  probability w, else masked, i.e. at level 1 - w of the absorbing process,
  and nothing is tilted. w = 0 positions are sampled without guidance.
* Early start (`model.early_start`, default on; rtc.dd.base.early_start):
  with a fraction f of the positions committed, the process starts at level
  1 - f (the share of masked tokens it then holds) and takes
  max(1, round(N (1 - f))) equal steps to 0 instead of N: at H = 8, d = 3,
  N = 5, 3 network calls (0.6x naive).
  Inference delays may be traced, so the steps are a loop whose trip count
  is traced (`lax.fori_loop`; a `lax.cond` per step cost more at batch 1).
* Early stop (`model.early_stop`, default off): realtime ends the loop
  once every token at positions < d + s is unmasked (`unmask_chunk`); the
  rollout uses no other position. With the random order a token is
  unmasked at a uniformly drawn step, so the d + s positions' s A tokens
  are all unmasked before the last step only with probability about
  (1 - 1/N)^(s A) (0.005 at N = 5, s = 2, A = 6): early stop saves little
  here, while DiscreteRTC's MaskGIT schedule (rtc.dd.discrete_rtc) fills
  whole positions early. Adaptive unmasking's rule (fewer steps for fewer
  unknown tokens) is this variant's early start.
* `training_time_action`: the first d positions are the previous chunk's
  bins at level 0, unmasked throughout (with early start as above).
* BID: rtc.common.core.bid over `action`, as for the uniform model.
"""

import dataclasses

import jax
import jax.numpy as jnp

from rtc.dd import base
from rtc.dd import ordinal
from rtc.dd import reverse

ORDERS = ('random', 'confidence')


@dataclasses.dataclass(frozen=True)
class MaskedConfig(base.ModelConfig):
  variant: str = 'masked'
  # 'random' or 'confidence' (MaskGIT's order): which masked tokens a step
  # unmasks.
  unmask_order: str = 'random'
  # Fewer steps when a prefix is committed (rtc.dd.base.early_start).
  early_start: bool = True
  # realtime's rule for 0 < w < 1: 'tilt' or 'given'.
  soft_positions: str = 'tilt'
  # Realtime ends decoding once every token at positions < d + s is
  # unmasked (DiscreteRTC's early stop; `unmask_chunk`).
  early_stop: bool = False

  def __post_init__(self):
    super().__post_init__()
    base.check_choice('unmask_order', self.unmask_order, ORDERS)
    base.check_choice('soft_positions', self.soft_positions,
                      base.SOFT_RULES)


def mask_tokens(rng, x0: jax.Array, t, num_bins: int):
  """Masks each token with probability t (broadcast against x0's leading
  axes). Returns (x_t with mask token `num_bins`, masked bool)."""
  t = jnp.asarray(t, jnp.float32)
  t = t.reshape(t.shape + (1,) * (x0.ndim - t.ndim))
  masked = jax.random.uniform(rng, x0.shape) < t
  return jnp.where(masked, num_bins, x0), masked


def unmask_chunk(logits_fn, rng, x: jax.Array, num_steps: int, num_bins: int,
                 decode: str, order: str = 'random', start=1.0, calls=None,
                 stop=None):
  """The reverse process from `x` [B,H,A] (mask token `num_bins`) to clean.

  logits_fn(x, t) -> logits [B,H,A,K]. Runs `calls` (default num_steps,
  may be traced, <= num_steps) equal steps from level `start` to 0 (with
  `calls` given, as a loop with that trip count).
  `stop` [H] bool (early stop): the loop ends after the first step at which
  every token at those positions is unmasked, in every chunk of the batch
  (after one step at least). Unmasked tokens never change and step k's key is fold_in(rng, k), so
  those positions are exactly what the full loop gives; tokens still masked
  then take their last draw.
  Returns (bins [B,H,A], decoded actions [B,H,A]; tokens unmasked on entry
  keep their bins and decode to 0, the caller fills them).
  """
  full = calls is None
  calls = num_steps if full else calls
  start = jnp.asarray(start, jnp.float32)

  def step(carry, k):
    x, value = carry[:2]
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
    decoded = ordinal.decode(drawn, logits, decode)
    value = jnp.where(unmask, decoded, value)
    return jnp.where(unmask, drawn, x), value, drawn, decoded

  value = jnp.zeros(x.shape, jnp.float32)
  if stop is not None:  # Early stop: a loop with a traced exit.
    first = jnp.asarray(0 if full else num_steps - calls, jnp.int32)

    def go_on(c):  # At least one step, so every token has a draw.
      k, x = c[:2]
      return (k < num_steps) & ((k == first) | jnp.any(
          (x == num_bins) & stop[None, :, None]))

    _, x, value, drawn, decoded = jax.lax.while_loop(
        go_on, lambda c: (c[0] + 1,) + step(c[1:], c[0]),
        (first, x, value, x, value))
    left = x == num_bins  # Positions >= d + s the loop did not reach.
    return jnp.where(left, drawn, x), jnp.where(left, decoded, value)
  if full:
    (x, value), _ = jax.lax.scan(lambda c, k: (step(c, k)[:2], None),
                                 (x, value), jnp.arange(num_steps))
  else:  # A loop over the last `calls` steps (a traced trip count).
    first = (num_steps - calls).astype(jnp.int32)
    x, value = jax.lax.fori_loop(first, num_steps,
                                 lambda k, c: step(c, k)[:2], (x, value))
  return x, value


class MaskedDiffusionPolicy(base.DiscreteDiffusionPolicy):
  """Discrete diffusion with masked corruption; the flow policy's interface."""

  extra_tokens = 1  # The mask token, K: a K+1-th embedding row, learned.

  @property
  def mask_token(self) -> int:
    return self.num_bins

  def _start(self, rng, obs, noise):
    del rng  # The all-masked chunk.
    noise = self._check_noise(
        obs, noise, f'tokens (bins or the mask token {self.mask_token})')
    if noise is not None:
      return noise
    shape = (obs.shape[0], self.chunk_size, self.action_dim)
    return jnp.full(shape, self.mask_token, jnp.int32)

  def _unmask(self, params, rng, x, obs, num_steps, tilt=None, clean=None,
              committed=None, stop=None):
    """x [B,H,A] -> actions; `committed` [B,H] positions given (early start
    counts them), `clean` [B,H] also get level 0 (training-time RTC),
    `stop` [H] the positions early stop waits for."""
    def logits_fn(x, t):
      noise_level = t if clean is None else jnp.where(clean, 0.0, t)
      if tilt is None:
        return self.logits(params, obs, x, noise_level)
      return self.logits(params, obs, x, noise_level, tilt)

    start, calls = 1.0, None
    if self.config.early_start and committed is not None:
      start, calls = base.early_start(committed, num_steps)
    return unmask_chunk(logits_fn, rng, x, num_steps, self.num_bins,
                        self.config.decode, self.config.unmask_order, start,
                        calls, stop if self.config.early_stop else None)

  def action(self, params, rng, obs, num_steps: int, noise=None):
    """A chunk [B, H, A] (decoded bins) from the all-masked chunk."""
    init_rng, rng = jax.random.split(rng)
    x = self._start(init_rng, obs, noise)
    bins, value = self._unmask(params, rng, x, obs, num_steps)
    given = x != self.mask_token  # Tokens unmasked in `noise`.
    return jnp.where(given, self.from_bins(bins), value)

  def _guided(self, params, rng, obs, num_steps, noise, y, tilt, committed,
              stop=None):
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
                            committed=given, stop=stop)
    return jnp.where(given[..., None], self.from_bins(y), value)

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """The first d positions are the previous chunk's bins at level 0."""
    clean = self._clean_prefix(obs, inference_delay)
    y = self.to_bins(prev_chunk)
    init_rng, rng = jax.random.split(rng)
    x = jnp.where(clean[..., None], y, self._start(init_rng, obs, noise))
    _, value = self._unmask(params, rng, x, obs, num_steps, clean=clean,
                            committed=clean)
    return jnp.where(clean[..., None], self.from_bins(y), value)

  def _corrupt(self, rng, x0, level):
    """Masks each token with probability `level`; only masked tokens are in
    the loss."""
    x_t, masked = mask_tokens(rng, x0, level, self.num_bins)
    return x_t, masked.astype(jnp.float32)


# The leaf interface (rtc.dd.model).
Config, Policy = MaskedConfig, MaskedDiffusionPolicy
