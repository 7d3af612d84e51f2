"""Tests for rtc.expert.agent: squashed-normal densities, reference weights."""

import math
import os
import pickle
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.bc import checkpoints
from rtc.expert import agent as agent_lib

A, NUM_MOTOR = 6, 4


def _phi_diff(z_lo, z_hi):
  """P(z_lo < Z < z_hi) for standard normal Z, accurate in both tails."""
  if z_lo > 0:
    return 0.5 * (math.erfc(z_lo / math.sqrt(2)) -
                  math.erfc(z_hi / math.sqrt(2)))
  return 0.5 * (math.erfc(-z_hi / math.sqrt(2)) -
                math.erfc(-z_lo / math.sqrt(2)))


def _numerical_log_density(y, mean, std, is_tanh):
  """log p(y) from differences of the Gaussian CDF (float64, per dim)."""
  total = 0.0
  for yi, m, s, t in zip(y, mean, std, is_tanh):
    yi = float(yi)
    gap = 1.0 - abs(yi) if t else min(yi, 1.0 - yi)
    h = 1e-4 * gap
    inv = np.arctanh if t else (lambda v: math.log(v) - math.log1p(-v))
    lo, hi = inv(yi - h), inv(yi + h)
    total += math.log(_phi_diff((lo - m) / s, (hi - m) / s) / (2 * h))
  return total


class SquashedNormalTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.is_tanh = agent_lib.motor_mask(A, NUM_MOTOR)

  def test_log_prob_matches_numerical_density(self):
    cases = [
        # Interior.
        ([0.3, -0.5, 0.0, 0.9, 0.2, 0.7], [0.1, -1, 0, 2, -1, 1],
         [1, .5, 2, 1, 1, .3]),
        # At the clip boundaries, with the mass pushed towards them.
        ([0.99999, -0.99999, 0.99999, -0.9999, 1e-5, 0.99999],
         [4, -4, 2, -3, -3, 5], [1, 1, 1.5, .5, 2, 2]),
        # Far from the mean (a low-density boundary).
        ([-0.99999, 0.99999, 0.5, -0.2, 0.99999, 1e-5],
         [3, -3, -2, 1, -4, 4], [.5, .5, .2, .3, .7, .7]),
    ]
    for y, mean, std in cases:
      dist = agent_lib.SquashedNormal(jnp.asarray(mean, jnp.float32),
                                      jnp.asarray(std, jnp.float32),
                                      self.is_tanh)
      y32 = np.asarray(y, np.float32)
      got = float(dist.log_prob(jnp.asarray(y32)))
      # The reference sees the same float32-rounded actions, in float64.
      want = _numerical_log_density(y32.astype(np.float64), mean, std,
                                    np.asarray(self.is_tanh))
      self.assertTrue(np.isfinite(got))
      self.assertAlmostEqual(got, want, delta=1e-4 + 1e-6 * abs(want),
                             msg=f'y={y}')

  def test_finite_values_and_gradients_everywhere(self):
    ys = jnp.array([[1.0, -1.0, 1.0, -1.0, 0.0, 1.0],
                    [0.99999, -0.99999, 0.0, 0.5, 1e-5, 0.99999],
                    [2.0, -3.0, 0.0, 0.0, -1.0, 5.0]], jnp.float32)

    def f(mean, logstd):
      dist = agent_lib.SquashedNormal(mean, jnp.exp(logstd), self.is_tanh)
      return jnp.sum(dist.log_prob(ys))

    for mean_value, logstd_value in ((0.0, 0.0), (5.0, -10.0),
                                     (-5.0, 2.0)):
      mean = jnp.full((3, A), mean_value, jnp.float32)
      logstd = jnp.full((A,), logstd_value, jnp.float32)
      value, grads = jax.value_and_grad(f, argnums=(0, 1))(mean, logstd)
      self.assertTrue(np.isfinite(value), (mean_value, logstd_value))
      for g in grads:
        self.assertTrue(np.all(np.isfinite(g)), (mean_value, logstd_value))

  def test_samples_are_clipped_and_scored(self):
    mean = jnp.array([[5.0, -5.0, 0.0, 0.0, 5.0, -5.0]] * 4000)
    dist = agent_lib.SquashedNormal(mean, jnp.full((A,), 3.0), self.is_tanh)
    y, logp = dist.sample(jax.random.key(0))
    y = np.asarray(y)
    self.assertLessEqual(np.abs(y[:, :NUM_MOTOR]).max(),
                         agent_lib.ACTION_LIMIT)
    self.assertGreaterEqual(y[:, NUM_MOTOR:].min(), agent_lib.SIGMOID_FLOOR)
    self.assertLessEqual(y[:, NUM_MOTOR:].max(), agent_lib.ACTION_LIMIT)
    # Large std: many samples sit exactly at the boundaries (P ~ 0.36).
    self.assertGreater(np.mean(y[:, 0] == np.float32(0.99999)), 0.25)
    self.assertTrue(np.all(np.isfinite(logp)))
    np.testing.assert_allclose(logp, dist.log_prob(jnp.asarray(y)),
                               rtol=1e-6)
    # Thruster dims are sigmoids: in [0, 1].
    self.assertGreater(np.mean(y[:, 4] > 0.5), 0.9)
    self.assertGreater(np.mean(y[:, 5] < 0.5), 0.9)

  def test_density_integrates_to_one(self):
    # One tanh and one sigmoid dim, integrated over (-1, 1) x (0, 1).
    is_tanh = jnp.array([True, False])
    dist = agent_lib.SquashedNormal(jnp.array([0.7, -0.4]),
                                    jnp.array([0.6, 1.3]), is_tanh)
    grid = np.linspace(-1, 1, 20001)[1:-1]
    grid01 = (grid + 1) / 2
    for dim, xs in ((0, grid), (1, grid01)):
      y = np.zeros((xs.size, 2), np.float32)
      y[:, 1 - dim] = 0.5 if dim == 0 else 0.0  # Other dim: fixed point.
      y[:, dim] = xs
      sub = agent_lib.SquashedNormal(dist.mean[dim:dim + 1],
                                     dist.std[dim:dim + 1],
                                     is_tanh[dim:dim + 1])
      p = np.exp(np.asarray(sub.log_prob(jnp.asarray(y[:, dim:dim + 1]))))
      self.assertAlmostEqual(float(np.trapezoid(p, xs)), 1.0, delta=2e-3)


def reference_dict(params):
  """rtc params -> the earlier implementation's expert pickle layout."""
  def layers(part):
    return {'layers': {2 * i: {'kernel': np.asarray(
        params[f'agent/{part}_{i}']['w']), 'bias': np.asarray(
            params[f'agent/{part}_{i}']['b'])} for i in range(3)}}
  return {'actor': layers('actor'), 'critic': layers('critic'),
          'logstd': np.asarray(params['agent']['logstd'])}


def numpy_policy(ref, obs):
  """The reference agent's forward pass, written out in numpy."""
  def mlp(part):
    x = obs
    for k in (0, 2, 4):
      x = x @ ref[part]['layers'][k]['kernel'] + ref[part]['layers'][k][
          'bias']
      if k != 4:
        x = np.tanh(x)
    return x
  mean = np.clip(mlp('actor'), -5, 5)
  std = np.exp(np.clip(ref['logstd'], -10, 2))
  return mean, std, mlp('critic')[:, 0]


class AgentTest(absltest.TestCase):

  def test_names_shapes_and_init(self):
    agent = agent_lib.ExpertAgent(10, A, NUM_MOTOR, hidden_dim=32)
    params = agent.init(jax.random.key(0))
    self.assertEqual(sorted(params), [
        'agent', 'agent/actor_0', 'agent/actor_1', 'agent/actor_2',
        'agent/critic_0', 'agent/critic_1', 'agent/critic_2'])
    self.assertEqual(params['agent/actor_0']['w'].shape, (10, 32))
    self.assertEqual(params['agent/critic_2']['w'].shape, (32, 1))
    # Orthogonal init: columns of the hidden layer have norm sqrt(2); the
    # actor head is scaled by 0.01.
    w1 = np.asarray(params['agent/actor_1']['w'])
    np.testing.assert_allclose(w1.T @ w1, 2.0 * np.eye(32), atol=1e-4)
    head = np.asarray(params['agent/actor_2']['w'])
    np.testing.assert_allclose(np.linalg.norm(head, axis=0), 0.01, rtol=1e-4)
    np.testing.assert_array_equal(params['agent']['logstd'], np.zeros(A))
    dist, value = agent.apply(params, jnp.ones((3, 10)))
    self.assertEqual(dist.mean.shape, (3, A))
    self.assertEqual(value.shape, (3,))

  def test_reference_pickle_gives_the_same_distribution(self):
    obs_dim = 4 * 7 + A
    agent = agent_lib.ExpertAgent(obs_dim, A, NUM_MOTOR, hidden_dim=16)
    params = agent.init(jax.random.key(1))
    # Non-trivial weights: scale the head so means reach the clip at +-5.
    params = jax.tree.map(lambda x: x, params)
    params['agent/actor_2'] = {
        'w': params['agent/actor_2']['w'] * 800.0,
        'b': jnp.linspace(-1, 1, A)}
    params['agent'] = {'logstd': jnp.array([-12., -1., 0., .5, 1., 3.])}
    ref = reference_dict(params)
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, 'worlds_s_x.pkl')
      with open(path, 'wb') as f:
        pickle.dump(ref, f)
      loaded = checkpoints.load_checked(path, agent.param_shapes())
    self.assertIs(type(agent_lib.agent_for_params(loaded, NUM_MOTOR)),
                  agent_lib.ExpertAgent)
    obs = np.random.default_rng(0).normal(size=(5, obs_dim)).astype(
        np.float32)
    ours, value = agent.apply(params, obs)
    theirs, value_ref = agent.apply(loaded, obs)
    mean_np, std_np, value_np = numpy_policy(ref, obs)
    self.assertGreater(np.abs(mean_np).max(), 4.99)  # The clip is exercised.
    for d in (ours, theirs):
      np.testing.assert_allclose(d.mean, mean_np, rtol=1e-4, atol=1e-4)
      np.testing.assert_allclose(d.std, std_np, rtol=1e-6)
    np.testing.assert_allclose(value, value_np, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(value_ref, value_np, rtol=1e-4, atol=1e-5)
    y, logp = ours.sample(jax.random.key(2))
    np.testing.assert_allclose(theirs.log_prob(y), logp, rtol=1e-5)
    np.testing.assert_array_equal(theirs.sample(jax.random.key(2))[0], y)


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
