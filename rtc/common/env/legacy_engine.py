"""The older Kinetix engine's episode-end scoring, in rtc's own wrapper.

rtc runs on kinetix-env 3.0.2. The published flow code pinned an older
Kinetix (FLAIROx/Kinetix at cf7453ea, `KinetixEnv.engine_step`). Both run
`frame_skip` physics substeps per environment step (2 in the paper's
levels); a substep whose reward is non-zero ends the episode. They differ
on the step that ends an episode (docs/kinetix_engine.md):

  what                   kinetix-env 3.0.2                older engine
  reward                 the first ending substep's       max over substeps
                                                          (a failure, -1, in
                                                          the last substep
                                                          scores 0)
  info (GoalR: solved)   the first ending substep's       the last substep's
  NaN in the state       ends the episode                 does not (*)

(*) The older code reads `dones.sum() > 0 | nan`, which Python parses as
`dones.sum() > (0 | nan)`: with a NaN in the state the step ends the
episode only if more than one substep ended it.

`step(kinetix_env, env_params, key, state, action, level)` is
`kinetix_env.step` (action processing, substeps, the step count, the time
limit, auto-reset to `level`) with the older scoring. The dense
(distance) reward is off in rtc (dense_reward_scale 0), so only the sparse
reward is computed; `last_distance` is kept up to date as 3.0.2 does.
"""

import jax
import jax.numpy as jnp


def engine_step(kinetix_env, env_params, env_state, action):
  """One environment step of physics with the older engine's scoring:
  (obs, env_state, reward, done, info)."""
  static = kinetix_env.static_env_params
  processed = kinetix_env.action_type.process_action(action, env_state,
                                                     static)

  def substep(s, _):
    s, manifolds = kinetix_env.physics_engine.step(s, env_params, processed)
    reward, info = kinetix_env.compute_reward_info(s, manifolds)
    return s, (reward, reward != 0, info)

  env_state, (rewards, dones, infos) = jax.lax.scan(
      substep, env_state, xs=None, length=static.frame_skip)
  env_state = env_state.replace(timestep=env_state.timestep + 1)
  nan = jax.tree.reduce(jnp.logical_or, jax.tree.map(
      lambda x: jnp.isnan(x).any(), env_state), False)
  reward = rewards.max()
  done = dones.sum() > nan.astype(jnp.int32)  # The older `> 0 | nan`.
  done |= env_state.timestep >= env_params.max_timesteps
  info = jax.tree.map(lambda x: x[-1], infos)
  env_state = env_state.replace(
      last_distance=jnp.where(done, -1.0, info['distance']))
  return kinetix_env.get_obs(env_state), env_state, reward, done, info


def step(kinetix_env, env_params, key, env_state, action, level):
  """kinetix_env.step (auto-reset to `level`) with `engine_step`."""
  _, key_reset = jax.random.split(key)
  obs, state, reward, done, info = engine_step(kinetix_env, env_params,
                                               env_state, action)
  obs_re, state_re = kinetix_env.reset_env(key_reset, env_params,
                                           override_reset_state=level)
  state = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), state_re,
                       state)
  obs = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), obs_re, obs)
  return obs, state, reward, done, info
