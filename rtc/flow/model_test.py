"""Tests for rtc.flow.model."""

import dataclasses
import os
import pickle

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.bc import checkpoints
from rtc.common.core import prefix
from rtc.common.testlib import testing
from rtc.flow import model as flow_model
from rtc.flow import reference_testing

SMALL = flow_model.ModelConfig(**testing.TINY_BACKBONE)
_perturbed_params = testing.perturbed_params
O, A, H = 7, 3, 8


class FlowPolicyTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.policy = flow_model.FlowPolicy(SMALL, obs_dim=O, action_dim=A)
    cls.params = _perturbed_params(cls.policy)
    k = jax.random.split(jax.random.key(1), 3)
    cls.obs = jax.random.normal(k[0], (4, O))
    cls.prev = jnp.clip(jax.random.normal(k[1], (4, H, A)), -1, 1)
    cls.noise = jax.random.normal(k[2], (4, H, A))
    p = cls.policy
    cls.action = staticmethod(jax.jit(p.action, static_argnums=(3,)))
    cls.realtime = staticmethod(jax.jit(p.realtime_action,
                                        static_argnums=(3, 7)))

  def test_parameter_count_and_shapes(self):
    policy = flow_model.FlowPolicy(flow_model.ModelConfig(), obs_dim=679,
                                   action_dim=6)
    shapes = policy.param_shapes()
    self.assertEqual(sum(int(np.prod(x.shape))
                         for x in jax.tree.leaves(shapes)), 3_072_006)
    out = jax.eval_shape(lambda p, k, o: policy.action(p, k, o, 3), shapes,
                         jax.random.key(0), jnp.zeros((5, 679)))
    self.assertEqual(out.shape, (5, 8, 6))
    v = jax.eval_shape(policy.velocity, shapes, jnp.zeros((5, 679)),
                       jnp.zeros((5, 8, 6)), jnp.zeros((5,)))
    self.assertEqual(v.shape, (5, 8, 6))

  def test_noise_makes_sampling_deterministic(self):
    a1 = self.action(self.params, jax.random.key(1), self.obs, 4, self.noise)
    a2 = self.action(self.params, jax.random.key(2), self.obs, 4, self.noise)
    np.testing.assert_array_equal(a1, a2)
    a3 = self.action(self.params, jax.random.key(2), self.obs, 4)
    self.assertGreater(float(jnp.abs(a3 - a1).max()), 1e-3)
    r1 = self.realtime(self.params, jax.random.key(1), self.obs, 4, self.prev,
                       2, 5, 'exp', 5.0, self.noise)
    r2 = self.realtime(self.params, jax.random.key(3), self.obs, 4, self.prev,
                       2, 5, 'exp', 5.0, self.noise)
    np.testing.assert_array_equal(r1, r2)

  def test_zero_guidance_equals_action(self):
    a = self.action(self.params, jax.random.key(1), self.obs, 4, self.noise)
    r = self.realtime(self.params, jax.random.key(1), self.obs, 4, self.prev,
                      2, 6, 'exp', 0.0, self.noise)
    np.testing.assert_allclose(r, a, atol=1e-5)

  def test_more_guidance_brings_prefix_closer(self):
    dists = []
    for g in (0.0, 1.0, 5.0):
      r = self.realtime(self.params, jax.random.key(1), self.obs, 5,
                        self.prev, 3, 6, 'ones', g, self.noise)
      dists.append(float(jnp.mean(jnp.abs(r[:, :6] - self.prev[:, :6]))))
    self.assertLess(dists[1], dists[0])
    self.assertLess(dists[2], dists[1])
    # Positions past the prefix horizon carry no weight but still move only
    # through the network; the prefix moves much more.
    self.assertLess(dists[2], 0.5 * dists[0])

  def test_guidance_weight(self):
    self.assertEqual(float(flow_model.guidance_weight(0.0, 5.0)), 5.0)
    t = 0.5
    expected = (1 - t) / t * (t**2 + (1 - t)**2) / (1 - t)**2
    np.testing.assert_allclose(flow_model.guidance_weight(t, 100.0), expected)
    self.assertEqual(float(flow_model.guidance_weight(0.9, 0.5)), 0.5)

  def test_bid_picks_smallest_weighted_prefix_distance(self):
    n, d, end = 6, 2, 5
    key = jax.random.key(7)
    chosen = self.policy.bid_action(self.params, key, self.obs, 3, self.prev,
                                    d, end, n)
    # Brute force: the same candidates (same key, tiled observations).
    obs_rep = jnp.tile(self.obs, (n, 1))
    cands = self.policy.action(self.params, key, obs_rep, 3).reshape(
        n, 4, H, A)
    w = np.asarray(prefix.prefix_weights(d, end, H, 'exp'))
    for b in range(4):
      losses = [np.sum(w * np.linalg.norm(np.asarray(cands[i, b]) -
                                          np.asarray(self.prev[b]), axis=-1))
                for i in range(n)]
      np.testing.assert_allclose(chosen[b], cands[int(np.argmin(losses)), b],
                                 atol=1e-6)

  def test_bid_with_weak_policy(self):
    weak = _perturbed_params(self.policy, seed=5)
    out = self.policy.bid_action(self.params, jax.random.key(7), self.obs, 3,
                                 self.prev, 2, 5, 6, weak_params=weak,
                                 bid_k=2)
    self.assertEqual(out.shape, (4, H, A))
    with self.assertRaisesRegex(ValueError, 'bid_k'):
      self.policy.bid_action(self.params, jax.random.key(7), self.obs, 3,
                             self.prev, 2, 5, 6, weak_params=weak)

  def test_loss_falls_on_synthetic_data(self):
    # A deterministic observation -> chunk mapping.
    obs, target = testing.synthetic_chunks(3, 64, O, H, A)
    policy = flow_model.FlowPolicy(SMALL, O, A)
    params, losses, _ = testing.fit(policy, obs, target, 300)
    self.assertLess(np.mean(losses[-20:]), 0.5 * np.mean(losses[:20]))
    # And sampling reproduces the targets far better than chance.
    sample = jax.jit(policy.action, static_argnums=(3,))(
        params, jax.random.key(0), obs, 10)
    err = float(jnp.mean(jnp.square(sample - target)))
    self.assertLess(err, 0.5 * float(jnp.mean(jnp.square(target))))

  def test_training_time_prefix(self):
    cfg = dataclasses.replace(SMALL, simulated_delay=3)
    policy = flow_model.FlowPolicy(cfg, O, A)
    params = _perturbed_params(policy)
    out = policy.training_time_action(params, jax.random.key(0), self.obs, 3,
                                      self.prev, 2)
    np.testing.assert_array_equal(out[:, :2], self.prev[:, :2])
    self.assertGreater(float(jnp.abs(out[:, 2:] - self.prev[:, 2:]).max()),
                       1e-3)
    # The prefix is left out of the loss: changing the prefix targets' noise
    # does not matter, but the loss is finite and differentiable.
    loss, metrics = policy.loss_and_metrics(params, jax.random.key(1),
                                            self.obs, self.prev)
    self.assertTrue(np.isfinite(float(loss)))
    self.assertIn('mean_delay', metrics)

  def test_training_time_loss_excludes_prefix(self):
    cfg = dataclasses.replace(SMALL, simulated_delay=8)
    policy = flow_model.FlowPolicy(cfg, O, A)
    params = _perturbed_params(policy)
    key = jax.random.key(4)
    # Recompute the loss by hand with the same random draws.
    noise_rng, time_rng, delay_rng = jax.random.split(key, 3)
    time = jax.random.uniform(time_rng, (4,))
    noise = jax.random.normal(noise_rng, self.prev.shape)
    delay = np.asarray(prefix.sample_delays(delay_rng, 4, 8))
    mask = np.arange(H)[None, :] < delay[:, None]
    self.assertTrue(mask.any() and (~mask).any())
    token_time = np.where(mask, 1.0, np.asarray(time)[:, None])
    x_t = (1 - token_time[..., None]) * noise + token_time[..., None] * \
        self.prev
    # The prefix enters clean: x_t equals the action there.
    np.testing.assert_allclose(np.asarray(x_t)[mask],
                               np.asarray(self.prev)[mask], atol=1e-6)
    pred = policy.velocity(params, self.obs, x_t, token_time)
    err = np.square(np.asarray(pred) - np.asarray(self.prev - noise))
    expected = err[~mask].mean()
    got = float(policy.loss(params, key, self.obs, self.prev))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    self.assertGreater(abs(err.mean() - expected), 1e-3 * expected)

  def test_reference_checkpoint_gives_same_velocities(self):
    ref = reference_testing.to_reference(jax.tree.map(np.asarray, self.params), 2)
    path = os.path.join(self.create_tempdir().full_path, 'ref.pkl')
    with open(path, 'wb') as f:
      pickle.dump(ref, f)
    params = checkpoints.load_checked(path, self.policy.param_shapes())
    x_t = self.noise
    time = jnp.array([0.0, 0.3, 0.7, 0.99])
    ours = self.policy.velocity(params, self.obs, x_t, time)
    theirs = reference_testing.reference_forward(ref, np.asarray(self.obs, np.float64),
                                np.asarray(x_t, np.float64),
                                np.asarray(time))
    np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=2e-5)
    # rtc's own format round-trips exactly too.
    own = os.path.join(self.create_tempdir().full_path, 'own.pkl')
    checkpoints.save_params(own, self.params)
    back = checkpoints.load_checked(own, self.policy.param_shapes())
    np.testing.assert_array_equal(
        self.policy.velocity(back, self.obs, x_t, time),
        self.policy.velocity(self.params, self.obs, x_t, time))


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
