"""Tests for rtc.dd.token_levels: uniform DD with per-token levels (tiny
shapes, fixed seeds, stated tolerances)."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from configs import dd as dd_config
from rtc.common.core import bins
from rtc.dd import model as dd_model
from rtc.dd import testing
from rtc.dd import token_levels

O, A, H, K = testing.O, testing.A, testing.H, testing.K
_perturbed_params = testing.perturbed_params
_counting = testing.counting


class TokenLevelsTest(absltest.TestCase):
  """rtc.dd.token_levels (uniform corruption, per-token levels)."""

  def _policy(self, **overrides):
    return testing.tiny_policy('token_levels', **overrides)

  def test_network_receives_per_token_levels_for_a_share(self):
    policy = self._policy(token_level_share=0.25)
    self.assertIsInstance(policy, token_levels.TokenLevelsPolicy)
    seen = []
    original = policy.logits
    policy.logits = lambda p, o, x, t, tilt=None: (seen.append(t),
                                                   original(p, o, x, t))[1]
    obs = jnp.zeros((256, O))
    policy.loss(policy.init(jax.random.key(0)), jax.random.key(1), obs,
                jnp.zeros((256, H, A)))
    level = np.asarray(seen[0])
    self.assertEqual(level.shape, (256, H))
    varied = (level.max(1) - level.min(1)) > 0
    # 256 examples: the standard error of the share is 0.027.
    self.assertAlmostEqual(varied.mean(), 0.25, delta=0.11)

  def test_committed_positions_clean_at_level_zero_every_step(self):
    policy = self._policy()
    params = _perturbed_params(policy)
    seen = []
    original = policy.logits

    def spy(p, o, x, t, tilt=None):
      jax.debug.callback(lambda x, t: seen.append((x, t)), x,
                         jnp.broadcast_to(t, x.shape[:2]))
      return original(p, o, x, t, tilt)

    policy.logits = spy
    obs, prev = testing.random_batch(4, O, H, A)
    out = policy.realtime_action(params, jax.random.key(2), obs, 4, prev, 3,
                                 5)
    jax.effects_barrier()
    y = np.asarray(policy.to_bins(prev))
    np.testing.assert_array_equal(out[:, :3], policy.from_bins(y[:, :3]))
    self.assertLen(seen, 4)
    for x, level in seen:
      np.testing.assert_array_equal(np.asarray(x)[:, :3], y[:, :3])
      np.testing.assert_array_equal(np.asarray(level)[:, :3], 0.0)
      self.assertTrue((np.asarray(level)[:, 3:] > 0).all())
    # The seed's model re-corrupts them instead.
    seed = testing.tiny_policy('uniform')
    seed_seen = []
    seed_logits = seed.logits
    seed.logits = lambda p, o, x, t, tilt=None: (
        jax.debug.callback(lambda t: seed_seen.append(t), jnp.asarray(t)),
        seed_logits(p, o, x, t, tilt))[1]
    seed.realtime_action(params, jax.random.key(2), obs, 4, prev, 3, 5)
    jax.effects_barrier()
    self.assertEqual(np.asarray(seed_seen[0]).shape, ())

  def test_given_soft_positions_start_from_the_plan_at_level_one_minus_w(
      self):
    policy = self._policy(soft_positions='given')
    params = _perturbed_params(policy)
    seen = []
    original = policy.logits

    def spy(p, o, x, t, tilt=None):
      self.assertIsNone(tilt)  # Nothing is tilted.
      jax.debug.callback(lambda x, t: seen.append((x, t)), x,
                         jnp.broadcast_to(t, x.shape[:2]))
      return original(p, o, x, t, tilt)

    policy.logits = spy
    b = 512
    obs = jax.random.normal(jax.random.key(0), (b, O))
    y = jax.random.randint(jax.random.key(1), (b, H, A), 0, K)
    w = jnp.array([1, 1, 0.8, 0.3, 0, 0, 0, 0], jnp.float32)
    committed = jnp.broadcast_to((w >= 1)[None], (b, H))
    policy._guided(params, jax.random.key(2), obs, 4, None, y, (y, w, 3.0),  # pylint: disable=protected-access
                   committed)
    jax.effects_barrier()
    self.assertLen(seen, 4)
    # Levels: (1 - w) times the shared level 1, 3/4, 1/2, 1/4.
    for k, (_, level) in enumerate(seen):
      np.testing.assert_allclose(
          np.asarray(level), np.broadcast_to((1 - w) * (1 - k / 4), (b, H)),
          atol=1e-6)
    # At the first call a token is y with probability w + (1 - w) / K.
    same = (np.asarray(seen[0][0]) == np.asarray(y)).mean(axis=(0, 2))
    # 1024 tokens per position: standard error <= 0.016; tolerance 0.05.
    np.testing.assert_allclose(same, w + (1 - w) / K, atol=0.05)

  def test_early_start_makes_fewer_calls_and_stays_on_bin_centres(self):
    params = _perturbed_params(self._policy())
    obs, prev = testing.random_batch(4, O, H, A)
    counts = {}
    for rule in ('tilt', 'given'):
      for early in (False, True):
        policy = self._policy(early_start=early, soft_positions=rule,
                              decode='sample')
        calls, _ = _counting(policy)
        # Traced delay: H = 8, d = 3, N = 5 -> round(5 * 5 / 8) = 3 calls.
        out = jax.jit(policy.realtime_action, static_argnums=(3, 7))(
            params, jax.random.key(2), obs, 5, prev, jnp.int32(3),
            jnp.int32(5), 'exp')
        jax.effects_barrier()
        counts[rule, early] = len(calls)
        centres = np.asarray(bins.bin_centres(K))
        dist = np.abs(np.asarray(out)[..., None] - centres).min(-1)
        np.testing.assert_allclose(dist, 0.0, atol=1e-6)
        np.testing.assert_array_equal(
            out[:, :3], policy.from_bins(policy.to_bins(prev))[:, :3])
    self.assertEqual(counts, {('tilt', False): 5, ('tilt', True): 3,
                              ('given', False): 5, ('given', True): 3})

  def test_refusals(self):
    with self.assertRaisesRegex(ValueError, 'token_level_share must be in'):
      self._policy(token_level_share=1.5)
    with self.assertRaisesRegex(
        ValueError, r"^model\.token_level_share is not an option of "
        r"model\.variant = 'uniform' \(it is of \('token_levels',\)\)"):
      testing.tiny_policy('uniform', token_level_share=0.5)
    with self.assertRaisesRegex(ValueError, 'model.soft_positions must be'):
      self._policy(soft_positions='blend')
    with self.assertRaisesRegex(ValueError, r'^model\.unmask_order is not an '
                                r'option of model\.variant'):
      self._policy(unmask_order='random')

  def test_token_levels_preset(self):
    c = dd_config.get_config('token_levels')
    model = dict(c.model.to_dict(), **testing.TINY)
    policy = dd_model.make_policy(model, O, A)
    self.assertIsInstance(policy, token_levels.TokenLevelsPolicy)
    self.assertEqual(policy.config.token_level_share, 0.5)
    self.assertTrue(policy.config.early_start)
    self.assertEqual(policy.config.soft_positions, 'tilt')


if __name__ == '__main__':
  absltest.main()
