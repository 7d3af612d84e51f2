"""Helpers for the DD variants' tests (rtc/dd/*_test.py): a tiny model of
any variant, perturbed parameters and a network-call counter."""

import functools

import jax

from rtc.common.testlib import testing
from rtc.dd import model as dd_model

O, A, H, K = 3, 2, 8, 16
# Tiny sizes (one layer, K = 16 bins) of the variant tests.
TINY = dict(channel_dim=32, channel_hidden_dim=64, token_hidden_dim=16,
            num_layers=1, action_chunk_size=H, num_bins=K,
            bin_embedding_dim=8)
# Initial params plus 0.3 N(0, 1), so zero-initialised outputs are not flat.
perturbed_params = functools.partial(testing.perturbed_params, scale=0.3,
                                     key_offset=1)


def tiny_policy(variant: str, **overrides):
  """A tiny `variant` policy (obs O, actions A) through rtc.dd.model."""
  return dd_model.make_policy(dict(TINY, variant=variant, **overrides), O, A)


def counting(policy):
  """Wraps policy.logits; returns (calls, seen): lists that grow by one per
  network call actually executed (a runtime callback, so skipped scan steps
  don't count), seen with the tokens it got."""
  calls, seen = [], []
  original = policy.logits

  def logits(params, obs, x, t, tilt=None):
    jax.debug.callback(lambda x: (calls.append(1), seen.append(x)), x)
    return original(params, obs, x, t, tilt)

  policy.logits = logits
  return calls, seen


def random_batch(n: int, obs_dim: int, chunk_size: int, action_dim: int):
  """(obs [n, O] ~ N(0, 1) from key 0, chunks [n, H, A] ~ U[-1, 1) from
  key 1): the tests' observations and (previous) chunks."""
  obs = jax.random.normal(jax.random.key(0), (n, obs_dim))
  chunks = jax.random.uniform(jax.random.key(1), (n, chunk_size, action_dim),
                              minval=-1, maxval=1)
  return obs, chunks
