"""Closed-loop evaluation of action-chunking policies (DESIGN §9).

One rollout function serves every policy kind: it only calls the DESIGN §2
interface (`action`, `realtime_action`, `bid_action`, and
`training_time_action` for models trained with a simulated delay).

A rollout runs `num_envs` parallel episodes of one level and keeps the current
chunk. Each cycle, with inference delay d and execution horizon s
(d <= s <= H - d):

1. compute the next chunk from the current observation;
2. execute the first d actions from the *previous* chunk, then actions
   d .. s-1 of the *new* chunk (s actions in all);
3. shift the new chunk left by s and pad with zeros: the "previous chunk" of
   the next cycle.

The first chunk comes from `action`. Metrics are the means over environments
of the first finished episode's return, length and solved flag.

d and s are traced values (masks and dynamic loop bounds), so each policy kind
and method compiles once for a whole sweep. Given a tuple of methods, the
rollout picks one by a traced index (`lax.switch`): a sweep's methods share
one program, whose environment physics is traced and compiled once. Only
the first episode counts, so the loop stops as soon as every environment
has finished one (or after `max_steps` environment steps); every cycle calls
the policy exactly once and steps the environments exactly s times.
"""

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp

from rtc.common.base import validate
from rtc.common.core import prefix
from rtc.common.env import envs

METHODS = ('naive', 'realtime', 'bid', 'hard_masking', 'training_time')


@dataclasses.dataclass(frozen=True)
class Method:
  """How the next chunk is computed."""
  name: str
  schedule: str = 'exp'  # realtime; hard_masking always uses `zeros`.
  max_guidance_weight: float = 5.0
  n_samples: int = 16  # bid
  bid_k: Optional[int] = None  # bid with a weak policy

  def __post_init__(self):
    if self.name not in METHODS:
      raise ValueError(f'Unknown method {self.name!r}; expected one of '
                       f'{", ".join(METHODS)}.')
    prefix.check_schedule(self.schedule)
    # The rules of rtc.common.base.validate (NaN is rejected too).
    validate.check_value('max_guidance_weight', self.max_guidance_weight,
                         validate.SWEEP['realtime']['max_guidance_weight'],
                         prefix='realtime.')
    bid = {'n_samples': self.n_samples, 'bid_k': self.bid_k}
    for name, rule in validate.SWEEP['bid'].items():
      validate.check_value(name, bid[name], rule, bid, prefix='bid.')

  @property
  def uses_weak_policy(self) -> bool:
    return self.name == 'bid' and self.bid_k is not None


def check_delay_horizon(delay: int, execute_horizon: int, chunk_size: int):
  if not 0 <= delay or not (max(1, delay) <= execute_horizon
                            <= chunk_size - delay):
    raise ValueError(
        f'Need 0 <= d and max(1, d) <= s <= H - d; got d={delay}, '
        f's={execute_horizon}, H={chunk_size}.')


def next_chunk(policy, method: Method, params, weak_params, key, obs,
               num_steps: int, prev_chunk, delay, execute_horizon):
  """The policy's next chunk for `method` (DESIGN §9, "Methods")."""
  chunk_size = policy.chunk_size
  if method.name == 'naive':
    return policy.action(params, key, obs, num_steps)
  if method.name in ('realtime', 'hard_masking'):
    schedule = 'zeros' if method.name == 'hard_masking' else method.schedule
    return policy.realtime_action(
        params, key, obs, num_steps, prev_chunk, delay,
        chunk_size - execute_horizon, schedule, method.max_guidance_weight)
  if method.name == 'bid':
    return policy.bid_action(
        params, key, obs, num_steps, prev_chunk, delay,
        chunk_size - execute_horizon, method.n_samples,
        weak_params if method.uses_weak_policy else None, method.bid_k)
  if method.name == 'training_time':
    if policy.config.simulated_delay is None:
      raise ValueError('Method training_time needs a model trained with '
                       'model.simulated_delay set.')
    return policy.training_time_action(params, key, obs, num_steps,
                                       prev_chunk, delay)
  raise ValueError(method.name)


def next_chunk_of(policy, methods, method_index, params, weak_params, key,
                  obs, num_steps: int, prev_chunk, delay, execute_horizon):
  """next_chunk of `methods[method_index]` (a traced index; with one method
  that method's chunk, with no switch)."""
  args = (params, weak_params, key, obs, num_steps, prev_chunk, delay,
          execute_horizon)
  if len(methods) == 1:
    return next_chunk(policy, methods[0], *args)
  return jax.lax.switch(method_index, [
      lambda m=m: next_chunk(policy, m, *args) for m in methods])


def _methods(method) -> tuple:
  return tuple(method) if isinstance(method, (tuple, list)) else (method,)


def shift_chunk(chunk: jax.Array, shift) -> jax.Array:
  """chunk[:, i + shift] for i + shift < H, else 0 ([B, H, A])."""
  chunk_size = chunk.shape[1]
  src = jnp.arange(chunk_size) + shift
  out = jnp.take(chunk, jnp.minimum(src, chunk_size - 1), axis=1)
  return jnp.where((src < chunk_size)[None, :, None], out, 0.0)


def rollout(policy, env, method, num_steps: int, params,
            weak_params, key: jax.Array, level, delay, execute_horizon,
            max_steps: Optional[int] = None, method_index=0):
  """Runs env.num_envs episodes of one level; returns first-episode metrics.

  `env` is an rtc.common.env.envs.BatchedEnv (or anything with its interface).
  `method`: a Method, or a tuple of them of which `method_index` (traced)
  picks one.
  """
  state, steps = rollout_state(policy, env, method, num_steps, params,
                               weak_params, key, level, delay,
                               execute_horizon, max_steps, method_index)
  metrics = envs.first_episode_metrics(state.stats)
  metrics['env_steps'] = steps
  return metrics


def rollout_state(policy, env, method, num_steps: int, params,
                  weak_params, key: jax.Array, level, delay, execute_horizon,
                  max_steps: Optional[int] = None, method_index=0):
  """The rollout loop; returns (final env state, environment steps run)."""
  methods = _methods(method)
  if max_steps is None:
    max_steps = int(env.env_params.max_timesteps)
  key, reset_key, first_key = jax.random.split(key, 3)
  obs, state = env.reset(reset_key, level)
  chunk = policy.action(params, first_key, obs, num_steps)

  def cycle_cond(carry):
    _, _, state, _, steps = carry
    return (steps < max_steps) & ~jnp.all(state.stats.first_done)

  def cycle(carry):
    key, obs, state, prev_chunk, steps = carry
    key, policy_key = jax.random.split(key)
    new = next_chunk_of(policy, methods, method_index, params, weak_params,
                        policy_key, obs, num_steps, prev_chunk, delay,
                        execute_horizon)

    def env_step(j, inner):
      key, obs, state = inner
      key, step_key = jax.random.split(key)
      action = jnp.where(j < delay, prev_chunk[:, j], new[:, j])
      obs, state, _, _, _ = env.step(step_key, state, action, level)
      return key, obs, state

    key, obs, state = jax.lax.fori_loop(0, execute_horizon, env_step,
                                        (key, obs, state))
    return (key, obs, state, shift_chunk(new, execute_horizon),
            steps + execute_horizon)

  carry = (key, obs, state, chunk, jnp.zeros((), jnp.int32))
  _, _, state, _, steps = jax.lax.while_loop(cycle_cond, cycle, carry)
  return state, steps
