r"""MaskGIT decoding, shared by masked DD variants (rtc.dd.discrete_rtc).

A chunk is tokens x [B, H, A]: bins 0..K-1 or the mask token K. Decoding
runs `calls` steps (Chang et al. 2022, MaskGIT; DiscreteRTC's
src/model_dd.py, outsider86/DiscreteRTC):

* every step draws a bin for every token from p_theta (decode temperature
  1.0, the published `decode_temperature`) and scores each masked token by
  the log-probability of its draw;
* after step j (ratio r = (j + 1) / calls) `mask_count` of the n tokens that
  were masked on entry stay masked: floor(n * (1 + cos(pi r)) / 2) (the
  cosine schedule), at least 1 and at most n - 1, and 0 after the last step;
  the lowest-scoring masked tokens stay masked, the others take their draw
  and never change again (no re-masking);
* choice noise: the score is log p + T g, g standard Gumbel,
  T = tau (1 - r) (`choice_temperature` tau); tau = 0 is deterministic, the
  published evaluation's setting (paper/stats/eval_config.json). (The
  published random path scores -log(p) / T + g and so keeps the most likely
  tokens masked; this is MaskGIT's intended rule.)
* early stop (`stop` positions): decoding ends after the first step at which
  every token at those positions is unmasked, for every chunk of the batch.
  Since unmasked tokens never change, those positions are exactly what full
  decoding gives with the same keys (each step's key is fold_in(rng, j));
  positions still masked then take their last draw (`decode` never returns
  the mask token).
* adaptive unmasking (`adaptive_calls`): with n of the H A tokens unknown,
  max(1, floor(N n / (H A))) steps instead of N (published `int()`).
"""

from typing import Callable, Optional

import jax
import jax.numpy as jnp


def cosine_mask_ratio(ratio):
  """The share of the entry's masked tokens still masked at `ratio` in
  [0, 1]: 1 at 0, 0 at 1."""
  return 0.5 * (1.0 + jnp.cos(jnp.pi * ratio))


def mask_count(unknown, step, calls):
  """How many of `unknown` [B] masked tokens stay masked after `step`
  (0-based) of `calls` (both may be traced)."""
  ratio = (step + 1.0) / calls
  n = jnp.floor(unknown.astype(jnp.float32) *
                cosine_mask_ratio(ratio)).astype(jnp.int32)
  n = jnp.minimum(jnp.maximum(n, 1), jnp.maximum(unknown - 1, 0))
  return jnp.where(step >= calls - 1, 0, n)


def adaptive_calls(num_steps: int, unknown, total: int):
  """Adaptive unmasking: max(1, floor(num_steps * unknown / total)) steps
  for `unknown` (may be traced) of `total` tokens."""
  return jnp.maximum(1, (num_steps * unknown) // total).astype(jnp.int32)


def keep_masked(rng, score, masked, count, temperature):
  """[B, ...] bool: the `count` [B] masked tokens of lowest `score` (plus
  `temperature` times Gumbel noise; a traced scalar), per chunk."""
  batch = score.shape[0]
  gumbel = jax.random.gumbel(rng, score.shape)
  score = jnp.where(masked, score + temperature * gumbel, jnp.inf)
  flat = score.reshape(batch, -1)
  rank = jnp.argsort(jnp.argsort(flat, axis=-1), axis=-1)
  return (rank < count[:, None]).reshape(score.shape) & masked


def step(logits_fn: Callable, sample: Callable, rng, x, unknown, j, calls,
         mask_token: int, tau: float):
  """One decoding step j of `calls`: (new tokens, this step's draws)."""
  draw_key, choice_key = jax.random.split(jax.random.fold_in(rng, j))
  logits = logits_fn(x)
  draw = sample(draw_key, logits)
  logp = jax.nn.log_softmax(logits, axis=-1)
  score = jnp.take_along_axis(logp, draw[..., None], -1)[..., 0]
  masked = x == mask_token
  ratio = (j + 1.0) / calls
  keep = keep_masked(choice_key, score, masked,
                     mask_count(unknown, j, calls), tau * (1.0 - ratio))
  return jnp.where(masked & ~keep, draw, x), draw


def decode(logits_fn: Callable, sample: Callable, rng, x, num_steps: int,
           mask_token: int, tau: float = 0.0, calls=None,
           stop: Optional[jax.Array] = None):
  """MaskGIT decoding of x [B, H, A] (mask token `mask_token`).

  logits_fn(x) -> logits [B, H, A, K]; sample(key, logits) -> bins.
  `calls` (may be traced, in 1..num_steps): steps to run (default
  num_steps); `stop` [H] bool: early stop once those positions are
  unmasked. Returns (tokens [B, H, A] with no mask token left, steps run).
  """
  unknown = jnp.sum((x == mask_token).reshape(x.shape[0], -1), axis=-1)
  take = lambda x, j, n: step(logits_fn, sample, rng, x, unknown, j, n,
                              mask_token, tau)
  if calls is None and stop is None:  # A fixed trip count: a scan.
    (x, draw), _ = jax.lax.scan(lambda c, j: (take(c[0], j, num_steps),
                                              None),
                                (x, jnp.zeros_like(x)), jnp.arange(num_steps))
    return jnp.where(x == mask_token, draw, x), jnp.asarray(num_steps)
  calls = num_steps if calls is None else calls

  def go_on(carry):
    j, x, _ = carry
    more = j < calls
    if stop is not None:
      more &= jnp.any((x == mask_token) & stop[None, :, None])
    return more

  def body(carry):
    j, x, _ = carry
    return (j + 1,) + take(x, j, calls)

  j, x, draw = jax.lax.while_loop(go_on, body,
                                  (jnp.zeros((), jnp.int32), x,
                                   jnp.zeros_like(x)))
  return jnp.where(x == mask_token, draw, x), j
