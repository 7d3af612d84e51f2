"""Tests for rtc.common.env.envs (one small level; env functions compiled once)."""

import json
import os
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.base import paths
from rtc.common.env import envs

LEVEL = 's/h0_weak_thrust.json'
MEDIUM = 'm/h18_thrust_right_very_easy.json'
LARGE = dict(num_polygons=12, num_circles=4, num_joints=6, num_thrusters=2,
             num_motor_bindings=4, num_thruster_bindings=2, frame_skip=2)


class LevelLoadingTest(absltest.TestCase):

  def test_names_and_parsing(self):
    self.assertEqual(envs.level_name('l/grasp_easy.json'),
                     'worlds_l_grasp_easy')
    self.assertEqual(envs.parse_levels('s/a, m/b.json'),
                     ('s/a.json', 'm/b.json'))
    self.assertLen(envs.parse_levels('paper'), 12)
    self.assertLen(envs.parse_levels('paper_packaged'), 8)
    with self.assertRaisesRegex(ValueError, 'twice'):
      envs.parse_levels('s/a,s/a.json')
    with self.assertRaisesRegex(ValueError, 'No levels'):
      envs.parse_levels(' , ')

  def test_shared_paper_levels(self):
    # The paper's 12 levels from ../shared/worlds (all of them), else the 8
    # that kinetix-env ships. Every id names a file of the set's folder;
    # two of each set are parsed (a large level's parse is about 3-5 s of
    # eager JAX operations in kinetix-env, so not all 20 are).
    worlds = paths.shared_worlds_dir()
    ids = 'paper' if worlds else 'paper_packaged'
    self.assertLen(envs.parse_levels(ids), 12 if worlds else 8)
    for name, root in ((ids, worlds), ('paper_packaged', None)):
      directory = envs.resolve_worlds_dir(root)
      for level_id in envs.parse_levels(name):
        self.assertTrue(os.path.isfile(os.path.join(directory, level_id)),
                        (name, level_id))
    # Parsed: the two sets' first and last levels.
    first_last = lambda name: (envs.parse_levels(name)[0],
                               envs.parse_levels(name)[-1])
    levels = envs.load_levels(first_last(ids), worlds)
    self.assertLen(levels, 2)
    for k, v in LARGE.items():
      self.assertEqual(getattr(levels.static_params, k), v, k)
    self.assertEqual(
        jax.tree.leaves(levels.states)[0].shape[0], len(levels))
    self.assertEqual(levels.env_params.dense_reward_scale, 0.0)
    self.assertEqual(levels.env_params.max_timesteps, 256)
    # The packaged ones load without any worlds directory.
    packaged = envs.load_levels(first_last('paper_packaged'))
    self.assertEqual(packaged.static_params, levels.static_params)

  def test_missing_level_names_path(self):
    with self.assertRaisesRegex(FileNotFoundError,
                                r'l/no_such_level\.json.*worlds_dir'):
      envs.load_levels('l/no_such_level')
    with self.assertRaisesRegex(FileNotFoundError, 'Worlds directory'):
      envs.load_levels(LEVEL, '/nonexistent/worlds')

  def test_corrupt_level_names_path(self):
    with tempfile.TemporaryDirectory() as d:
      os.makedirs(os.path.join(d, 's'))
      with open(os.path.join(d, 's', 'bad.json'), 'w') as f:
        f.write('{"not": "a level"')
      with self.assertRaisesRegex(ValueError, r's/bad\.json'):
        envs.load_levels('s/bad', d)

  def test_mixed_sizes_pad_to_the_largest(self):
    small, medium = LEVEL, MEDIUM
    mixed = envs.load_levels([small, medium])
    alone = envs.load_levels(medium)
    self.assertEqual(mixed.static_params, alone.static_params)
    for k in envs.COUNT_FIELDS:
      self.assertGreater(getattr(alone.static_params, k),
                         getattr(envs.load_levels(small).static_params, k), k)
    # An evaluation of the small level alone keeps the run's shapes.
    padded = envs.load_levels(small, pad_like=[small, medium])
    self.assertEqual(padded.static_params, alone.static_params)
    for a, b in zip(jax.tree.leaves(padded.level(0)),
                    jax.tree.leaves(mixed.level(0))):
      np.testing.assert_array_equal(a, b)

  def test_other_static_params_differ_names_path(self):
    src = os.path.join(envs.package_worlds_dir(), LEVEL)
    with open(src) as f:
      level = json.load(f)
    level['static_env_params']['frame_skip'] = 3
    with tempfile.TemporaryDirectory() as d:
      os.makedirs(os.path.join(d, 's'))
      with open(os.path.join(d, 's', 'skip3.json'), 'w') as f:
        json.dump(level, f)
      with open(src) as f, open(os.path.join(d, LEVEL), 'w') as g:
        g.write(f.read())
      with self.assertRaisesRegex(ValueError,
                                  r's/skip3\.json.*beyond the entity counts'):
        envs.load_levels([LEVEL, 's/skip3'], d)


def _make_rollout(env, level):
  """A jitted rollout of `actions` [T, B, A] from reset."""

  @jax.jit
  def rollout(key, actions):
    obs, state = env.reset(key, level)

    def body(carry, xs):
      state = carry
      k, a = xs
      obs, state, r, d, info = env.step(k, state, a, level)
      return state, (obs, r, d, info, state.history, state.prev_action)

    keys = jax.random.split(key, actions.shape[0])
    final, out = jax.lax.scan(body, state, (keys, actions))
    return obs, final, out

  return rollout


class BatchedEnvTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.levels = envs.load_levels(LEVEL)
    cls.level = cls.levels.level(0)
    cls.env = envs.BatchedEnv.for_levels(cls.levels, 8, obs_history=4,
                                         include_prev_action=True)
    cls.rollout = _make_rollout(cls.env, cls.level)
    actions = jnp.tile(jnp.array([0, 0, 0, 0, 1.0, 1.0]), (100, 8, 1))
    actions = actions * (jnp.arange(8) % 2)[None, :, None]  # Half idle.
    cls.actions = actions
    cls.out = cls.rollout(jax.random.key(0), actions)

  def test_padded_level_plays_the_same(self):
    # The small level padded to a medium level's entity counts (a run that
    # mixes s/ and m/): same rewards and episode ends for the same actions.
    padded = envs.load_levels(LEVEL, pad_like=[LEVEL, MEDIUM])
    self.assertNotEqual(padded.static_params, self.levels.static_params)
    env = envs.BatchedEnv.for_levels(padded, 8, obs_history=4,
                                     include_prev_action=True)
    self.assertGreater(env.plain_obs_dim(padded.level(0)),
                       self.env.plain_obs_dim(self.level))
    out = _make_rollout(env, padded.level(0))(jax.random.key(0),
                                              self.actions)
    _, _, (_, reward, done, _, _, _) = self.out
    np.testing.assert_array_equal(np.asarray(out[2][2]), np.asarray(done))
    np.testing.assert_allclose(np.asarray(out[2][1]), np.asarray(reward),
                               atol=1e-6)

  def test_observation_layout(self):
    obs0, _, (obs, _, done, _, history, prev_action) = self.out
    plain = self.env.plain_obs_dim(self.level)
    self.assertEqual(obs0.shape, (8, 4 * plain + 6))
    self.assertEqual(self.env.obs_dim(self.level), 4 * plain + 6)
    # At reset the 4 frames are equal and the previous action is zero.
    np.testing.assert_array_equal(obs0[:, :plain], obs0[:, 3 * plain:4 *
                                                         plain])
    np.testing.assert_array_equal(obs0[:, -6:], 0.0)
    # After a step without done: frames shift by one (oldest first) and the
    # previous action is the action just taken (before noise).
    t = 1
    live = ~np.asarray(done[t])
    self.assertTrue(live.any())
    np.testing.assert_array_equal(obs[t][live, :3 * plain],
                                  obs[t - 1][live, plain:4 * plain])
    np.testing.assert_array_equal(prev_action[t][live],
                                  self.actions[t][live])
    # After a done the history restarts from the reset observation.
    d = np.asarray(done)
    ts, es = np.nonzero(d)
    self.assertGreater(len(ts), 0)
    t, e = ts[0], es[0]
    np.testing.assert_array_equal(history[t][e, 0], history[t][e, 3])
    np.testing.assert_array_equal(prev_action[t][e], 0.0)

  def test_first_episode_statistics(self):
    _, final, (_, reward, done, info, _, _) = self.out
    reward, done = np.asarray(reward), np.asarray(done)
    stats = final.stats
    for e in range(8):
      ends = np.nonzero(done[:, e])[0]
      self.assertGreater(len(ends), 0, e)
      first = ends[0]
      self.assertTrue(stats.first_done[e])
      self.assertEqual(int(stats.first_length[e]), first + 1)
      np.testing.assert_allclose(stats.first_return[e],
                                 reward[:first + 1, e].sum(), atol=1e-5)
      np.testing.assert_allclose(
          info['returned_episode_returns'][first, e], reward[:first + 1,
                                                             e].sum(),
          atol=1e-5)
    metrics = envs.first_episode_metrics(stats)
    np.testing.assert_allclose(metrics['returned_episode_lengths'],
                               np.mean(stats.first_length), rtol=1e-6)

  def test_task_reward_without_shaping(self):
    _, _, (_, reward, done, info, _, _) = self.out
    reward, done = np.asarray(reward), np.asarray(done)
    # The task reward is 0 until the episode ends, then +1 (solved) or -1.
    np.testing.assert_array_equal(reward[~done], 0.0)
    self.assertTrue(np.all(np.isin(reward[done], [-1.0, 0.0, 1.0])))
    np.testing.assert_array_equal(np.asarray(info['solved'])[done],
                                  reward[done] > 0)

  def test_action_noise_is_applied(self):
    # What reaches Kinetix's step is the action plus N(0, std) noise, drawn
    # afresh per environment and step; with std 0 the action itself. A
    # stand-in for Kinetix's step returns the action it was given as the
    # observation (eager Kinetix steps would cost about 20 s here).
    n = 4096
    action = jnp.tile(jnp.linspace(-0.5, 0.5, 6), (n, 1))

    def given(std, seed):
      env = envs.BatchedEnv.for_levels(self.levels, n, action_noise_std=std)
      env.kinetix_env = _EchoStep()
      state = envs.EnvState(jnp.zeros(n), jnp.zeros((n, 1, 6)),
                            jnp.zeros((n, 6)), envs.EpisodeStats.zeros(n))
      obs, *_ = env.step(jax.random.key(seed), state, action, self.level)
      return np.asarray(obs)

    np.testing.assert_array_equal(given(0.0, 1), action)
    noise = given(envs.ACTION_NOISE_STD, 1) - np.asarray(action)
    # Sample std of 24,576 draws: relative SE about 0.5 %, tolerance 3 %.
    np.testing.assert_allclose(noise.std(), envs.ACTION_NOISE_STD, rtol=0.03)
    self.assertLess(abs(noise.mean()), 0.03 * envs.ACTION_NOISE_STD)
    self.assertFalse(np.allclose(noise[0], noise[1]))  # Per environment.
    self.assertFalse(np.allclose(
        noise, given(envs.ACTION_NOISE_STD, 2) - np.asarray(action)))


class _EchoStep:
  """Kinetix's step interface; the observation is the action it was given."""

  def step(self, key, state, action, env_params, level):
    del key, env_params, level
    info = {'GoalR': jnp.array(False), 'distance': jnp.array(0.0)}
    return action, state, jnp.array(0.0), jnp.array(False), info

if __name__ == '__main__':
  absltest.main()
