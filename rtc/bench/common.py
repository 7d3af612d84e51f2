"""Shared pieces of the benchmark targets: inputs and latency tables."""

import functools

import jax
import jax.numpy as jnp

from rtc.bench import timing

OBS_DIM = 679  # The paper's large levels.
ACTION_DIM = 6
NUM_STEPS = 5
N_SAMPLES = 16


def inputs(batch: int, chunk_size: int = 8, seed: int = 0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  obs = jax.random.normal(k1, (batch, OBS_DIM))
  prev = jnp.tanh(jax.random.normal(k2, (batch, chunk_size, ACTION_DIM)))
  return obs, prev


def sampling_fns(policy, num_steps=NUM_STEPS, n_samples=N_SAMPLES,
                 guidance=5.0):
  """Jitted action / realtime_action / bid_action at d=2, s=3 (exp)."""
  action = jax.jit(lambda p, k, o, prev: policy.action(p, k, o, num_steps))
  realtime = jax.jit(lambda p, k, o, prev: policy.realtime_action(
      p, k, o, num_steps, prev, 2, policy.chunk_size - 3, 'exp', guidance))
  bid = jax.jit(lambda p, k, o, prev: policy.bid_action(
      p, k, o, num_steps, prev, 2, policy.chunk_size - 3, n_samples))
  return {'action': action, 'realtime_action': realtime, 'bid_action': bid}


def latencies(policy, params, batch_sizes, guidance, log=print):
  """{(op, batch): seconds}, median of repeats (fewer for slow calls)."""
  out = {}
  fns = sampling_fns(policy, guidance=guidance)
  for batch in batch_sizes:
    obs, prev = inputs(batch, policy.chunk_size)
    for name, fn in fns.items():
      args = (params, jax.random.key(1), obs, prev)
      repeats = 20 if batch <= 64 else 3
      if name == 'bid_action' and batch > 64:
        repeats = 1
      out[(name, batch)] = timing.time_fn(fn, *args, repeats=repeats)
      log(f'  {policy.kind} {name} batch {batch}: '
          f'{timing.fmt(out[(name, batch)])}')
  return out


def flow_policy():
  from rtc.flow import model as flow_model  # pylint: disable=g-import-not-at-top
  return flow_model.FlowPolicy(flow_model.ModelConfig(), OBS_DIM, ACTION_DIM)


def dd_policy(num_bins: int = 256):
  from rtc.dd import model as dd_model  # pylint: disable=g-import-not-at-top
  return dd_model.make_policy({'num_bins': num_bins}, OBS_DIM, ACTION_DIM)


@functools.lru_cache(maxsize=None)
def params_for(policy):
  return jax.jit(policy.init)(jax.random.key(0))
