"""The older engine's episode-end scoring changes exactly what it should.

Hand-built substeps: a stub environment whose physics only counts substeps
and whose reward and goal flag per substep are scripted. kinetix-env 3.0.2's
own `KinetixEnv.engine_step` and rtc.common.env.legacy_engine.engine_step run
on the same stub: they differ only on the ending step's reward (first ending
substep vs max, so a failure in the last substep scores 0), its goal flag
(first ending substep vs last substep) and a NaN state (ends the episode vs
needs two ending substeps). A real level's
step shows the physics and observations are those of kinetix-env's step.
"""

import types

from absl.testing import absltest
from absl.testing import parameterized
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.env import envs
from rtc.common.env import kinetix_import
from rtc.common.env import legacy_engine
from rtc.common.testlib import testing

_KINETIX = kinetix_import.load()
KinetixEnv = _KINETIX.KinetixEnv
EnvParams = _KINETIX.EnvParams
PARAMS = EnvParams(dense_reward_scale=0.0, max_timesteps=256)


@struct.dataclass
class StubState:
  timestep: jax.Array
  last_distance: jax.Array
  substep: jax.Array
  x: jax.Array


class StubEnv:
  """Two substeps; substep i gives rewards[i] and goals[i]."""

  def __init__(self, rewards, goals):
    self.rewards, self.goals = jnp.array(rewards), jnp.array(goals)
    self.static_env_params = types.SimpleNamespace(frame_skip=2)
    self.action_type = types.SimpleNamespace(
        process_action=lambda action, state, static: action)
    self.physics_engine = types.SimpleNamespace(
        step=lambda s, params, action: (s.replace(substep=s.substep + 1),
                                        None))

  def compute_reward_info(self, s, manifolds):
    del manifolds
    return self.rewards[s.substep - 1], {
        'GoalR': self.goals[s.substep - 1], 'distance': jnp.float32(0.5)}

  def get_obs(self, s):
    return s.x


def _state(nan=False, timestep=0):
  return StubState(jnp.int32(timestep), jnp.float32(-1.0), jnp.int32(0),
                   jnp.array([jnp.nan if nan else 0.0, 1.0]))


def _score(step_fn, env, state):
  _, _, reward, done, info = step_fn(env, state)
  return float(reward), bool(done), bool(info['GoalR'])


def _new(env, state):
  return KinetixEnv.engine_step(env, state, jnp.zeros(2), PARAMS)


def _old(env, state):
  return legacy_engine.engine_step(env, PARAMS, state, jnp.zeros(2))


class ScoringTest(parameterized.TestCase):

  # (name, rewards, goals, nan, 3.0.2's (reward, done, solved), older's).
  @parameterized.named_parameters(
      ('goal_then_nothing', [1., 0.], [True, False], False,
       (1., True, True), (1., True, False)),
      ('fail_then_goal', [-1., 1.], [False, True], False,
       (-1., True, False), (1., True, True)),
      ('goal_then_fail', [1., -1.], [True, False], False,
       (1., True, True), (1., True, False)),
      ('nan_no_ending_substep', [0., 0.], [False, False], True,
       (0., True, False), (0., False, False)),
      ('nan_one_ending_substep', [0., 1.], [False, True], True,
       (1., True, True), (1., False, True)),
      # The max of [0, -1]: a failure in the last substep scores 0.
      ('fail_last', [0., -1.], [False, False], False,
       (-1., True, False), (0., True, False)),
      # Unchanged: no ending substep, a goal last, two equal endings.
      ('nothing', [0., 0.], [False, False], False,
       (0., False, False), (0., False, False)),
      ('goal_last', [0., 1.], [False, True], False,
       (1., True, True), (1., True, True)),
      ('nan_two_ending_substeps', [1., 1.], [True, True], True,
       (1., True, True), (1., True, True)),
  )
  def test_ending_step(self, rewards, goals, nan, new, old):
    env = StubEnv(rewards, goals)
    self.assertEqual(_score(_new, env, _state(nan)), new)
    self.assertEqual(_score(_old, env, _state(nan)), old)

  def test_time_limit_ends_both(self):
    env = StubEnv([0., 0.], [False, False])
    for fn in (_new, _old):
      self.assertTrue(_score(fn, env, _state(timestep=255))[1])
      self.assertFalse(_score(fn, env, _state(timestep=254))[1])


class RealLevelTest(absltest.TestCase):

  def test_physics_and_reset_match_kinetix_step(self):
    levels = envs.load_levels(testing.TINY_LEVEL)
    level = levels.level(0)
    new = envs.BatchedEnv.for_levels(levels, 4)
    old = envs.BatchedEnv.for_levels(levels, 4, legacy_episode_end=True)
    _, state = new.reset(jax.random.key(0), level)
    action = jnp.tile(jnp.linspace(-1., 1., new.action_dim), (4, 1))

    def run(env):
      def body(s, k):
        obs, s, reward, done, _ = env.step(k, s, action, level)
        return s, (obs, reward, done)
      return jax.jit(lambda s: jax.lax.scan(
          body, s, jax.random.split(jax.random.key(1), 40)))(state)

    (_, (obs_n, rew_n, done_n)), (_, (obs_o, rew_o, done_o)) = (
        run(new), run(old))
    # Up to the first episode end the trajectories are the same.
    first = int(np.argmax(np.asarray(done_n | done_o).any(axis=1)))
    if not np.asarray(done_n | done_o).any():
      first = 40
    np.testing.assert_array_equal(obs_n[:first], obs_o[:first])
    np.testing.assert_array_equal(rew_n[:first], rew_o[:first])
    self.assertGreater(first, 1)


if __name__ == '__main__':
  absltest.main()
