"""Tests for rtc.expert.ppo: GAE, reward shaping and one PPO update."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.env import envs
from rtc.common.testlib import testing
from rtc.expert import agent as agent_lib
from rtc.expert import ppo


class GaeTest(absltest.TestCase):

  def test_matches_hand_computation_with_a_done_in_the_middle(self):
    gamma, lam = 0.9, 0.8
    rewards = np.array([1.0, 0.0, 2.0, -1.0], np.float32)
    values = np.array([0.5, 1.0, -0.5, 2.0], np.float32)
    dones = np.array([False, True, False, False])
    last_value = np.float32(3.0)
    # By hand, backwards. Step 1 ends its episode: no bootstrap past it.
    d3 = -1.0 + gamma * 3.0 - 2.0                     # -0.3
    a3 = d3
    d2 = 2.0 + gamma * 2.0 - (-0.5)                   # 4.3
    a2 = d2 + gamma * lam * a3                        # 4.3 - 0.216
    d1 = 0.0 + 0.0 - 1.0                              # done: -1.0
    a1 = d1                                           # nothing flows back
    d0 = 1.0 + gamma * 1.0 - 0.5                      # 1.4
    a0 = d0 + gamma * lam * a1                        # 1.4 - 0.72
    want = np.array([a0, a1, a2, a3])
    got = ppo.gae(jnp.asarray(rewards), jnp.asarray(values),
                  jnp.asarray(dones), jnp.asarray(last_value), gamma, lam)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(want, [0.68, -1.0, 4.084, -0.3], rtol=1e-6)
    # Batched over envs: columns are independent.
    got2 = ppo.gae(jnp.stack([rewards, rewards * 0], 1),
                   jnp.stack([values, values], 1),
                   jnp.stack([dones, dones], 1),
                   jnp.array([3.0, 0.0]), gamma, lam)
    np.testing.assert_allclose(got2[:, 0], want, rtol=1e-6)
    self.assertNotAlmostEqual(float(got2[3, 1]), float(want[3]))


class ShapingTest(absltest.TestCase):

  def test_distance_penalty(self):
    reward = jnp.array([0.0, 1.0, -1.0, 0.0])
    done = jnp.array([False, True, True, True])
    distance = jnp.array([3.0, 1.5, 6.0, 12.0])
    length = jnp.array([10, 20, 56, 256])
    shaped, prev = ppo.shaped_reward('distance', reward, done, distance,
                                     jnp.full(4, -1.0), length, 256)
    p = distance / 6 / 256
    want = [-p[0], 1.0, -1.0 - p[2] - 200 * p[2], -p[3]]
    np.testing.assert_allclose(shaped, want, rtol=1e-6)
    np.testing.assert_array_equal(prev, [3.0, -1.0, -1.0, -1.0])

  def test_kinetix_delta_distance(self):
    reward = jnp.array([0.0, 0.0, 1.0])
    done = jnp.array([False, False, True])
    shaped, prev = ppo.shaped_reward(
        'kinetix', reward, done, jnp.array([2.0, 1.0, 0.5]),
        jnp.array([-1.0, 3.0, 1.0]), jnp.array([1, 5, 9]), 256)
    np.testing.assert_allclose(shaped, [0.0, 0.2, 1.05], rtol=1e-6)
    np.testing.assert_array_equal(prev, [2.0, 1.0, -1.0])
    shaped, _ = ppo.shaped_reward('none', reward, done, jnp.ones(3),
                                  jnp.ones(3), jnp.ones(3), 256)
    np.testing.assert_array_equal(shaped, reward)
    with self.assertRaisesRegex(ValueError, 'shaping'):
      ppo.Settings(shaping='dense').validate()


TINY = ppo.Settings(num_envs=4, num_steps=8, num_minibatches=2,
                    update_epochs=2)


class UpdateTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    levels = envs.load_levels(testing.TINY_LEVEL)
    cls.level = levels.level(0)
    env = envs.BatchedEnv.for_levels(levels, TINY.num_envs, obs_history=4,
                                     include_prev_action=True)
    agent = agent_lib.ExpertAgent(env.obs_dim(cls.level), env.action_dim,
                                  levels.static_params.num_motor_bindings,
                                  hidden_dim=16)
    cls.trainer = ppo.PPO(agent, env, TINY)
    # A tuple, not attributes: jitted functions must not become methods.
    cls.fns = (jax.jit(cls.trainer.init), jax.jit(cls.trainer.update))

  def _run(self, learning_rate):
    key = jax.random.key_data(jax.random.key(0))
    init, update = self.fns
    runner = init(key, self.level, learning_rate)
    new, metrics = update(runner, self.level)
    return runner, new, jax.device_get(metrics)

  def test_update_changes_params_and_keeps_them_finite(self):
    runner, new, metrics = self._run(3e-4)
    self.assertTrue(bool(metrics['finite']))
    before = jax.tree.leaves(runner.params)
    after = jax.tree.leaves(new.params)
    changed = [not np.allclose(a, b) for a, b in zip(before, after)]
    self.assertTrue(all(changed), changed)  # Every parameter moves.
    for leaf in after:
      self.assertTrue(np.all(np.isfinite(leaf)))
    for k in ('loss', 'pg_loss', 'value_loss', 'approx_kl', 'grad_norm'):
      self.assertTrue(np.isfinite(metrics[k]), k)
    self.assertGreater(metrics['grad_norm'], 0.0)
    # The environments moved on and the update count of Adam is epochs x
    # minibatches.
    self.assertFalse(np.array_equal(runner.obs, new.obs))
    self.assertEqual(int(new.opt_state[1].count), 4)
    self.assertLessEqual(metrics['episodes'], TINY.num_envs * TINY.num_steps)

  def test_non_finite_update_is_flagged(self):
    _, new, metrics = self._run(float('nan'))
    self.assertFalse(bool(metrics['finite']))
    self.assertFalse(np.all(np.isfinite(new.params['agent/actor_0']['w'])))


if __name__ == '__main__':
  absltest.main()
