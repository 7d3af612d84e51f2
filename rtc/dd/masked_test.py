"""Tests for rtc.dd.masked: the masked (absorbing) DD variant (tiny shapes,
fixed seeds, stated tolerances)."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.core import bins
from rtc.dd import masked
from rtc.dd import testing

O, A, H, K = testing.O, testing.A, testing.H, testing.K
_perturbed_params = testing.perturbed_params
_counting = testing.counting


def _policy(**overrides):
  return testing.tiny_policy('masked', **overrides)


class MaskProcessTest(parameterized.TestCase):

  @parameterized.parameters(0.1, 0.5, 0.9)
  def test_mask_frequency_matches_t(self, t):
    x0 = jnp.zeros((64, H, A), jnp.int32)
    x_t, masked_ = masked.mask_tokens(jax.random.key(0), x0, t, K)
    n = x0.size  # 1024 tokens: the standard error is <= 0.016.
    freq = float(jnp.mean(masked_))
    self.assertAlmostEqual(freq, t, delta=4 * np.sqrt(t * (1 - t) / n))
    np.testing.assert_array_equal(np.asarray(x_t == K), np.asarray(masked_))

  def test_per_example_levels(self):
    t = jnp.array([0.0, 0.3, 1.0])
    x0 = jnp.ones((3, 64, A), jnp.int32)
    _, m = masked.mask_tokens(jax.random.key(1), x0, t, K)
    freq = np.asarray(jnp.mean(m, axis=(1, 2)))
    self.assertEqual(freq[0], 0.0)
    self.assertEqual(freq[2], 1.0)
    self.assertAlmostEqual(freq[1], 0.3, delta=0.1)  # 128 tokens, 4 s.e.

  def test_loss_ignores_unmasked_tokens(self):
    policy = _policy()
    params = _perturbed_params(policy)
    obs, action = testing.random_batch(16, O, H, A)
    key = jax.random.key(5)
    level_rng, mask_rng, _ = jax.random.split(key, 3)
    level = jax.random.uniform(level_rng, (16,))
    x0 = policy.to_bins(action)
    x_t, m = masked.mask_tokens(mask_rng, x0, level, K)
    m = np.asarray(m)
    self.assertTrue(m.any() and (~m).any())
    logp = jax.nn.log_softmax(policy.logits(params, obs, x_t, level))
    nll = -np.take_along_axis(np.asarray(logp), np.asarray(x0)[..., None],
                              -1)[..., 0]
    got = float(policy.loss(params, key, obs, action))
    np.testing.assert_allclose(got, nll[m].mean(), rtol=1e-5)
    self.assertGreater(abs(nll.mean() - nll[m].mean()), 1e-3)

  def test_simulated_delay_prefix_is_never_masked(self):
    policy = _policy(simulated_delay=8)
    x_t = []
    original = policy.logits
    policy.logits = lambda p, o, x, t, tilt=None: (x_t.append((x, t)),
                                                   original(p, o, x, t))[1]
    obs = jnp.zeros((64, O))
    action = jnp.zeros((64, H, A))
    policy.loss(policy.init(jax.random.key(0)), jax.random.key(1), obs,
                action)
    x, t = (np.asarray(v) for v in x_t[0])
    self.assertEqual(t.shape, (64, H))
    clean = t == 0.0
    self.assertTrue(clean.any())
    self.assertFalse((x[clean] == K).any())


class SamplingTest(parameterized.TestCase):

  @parameterized.parameters('random', 'confidence')
  def test_nothing_is_masked_after_the_last_step(self, order):
    policy = _policy(unmask_order=order)
    params = _perturbed_params(policy)
    obs = jax.random.normal(jax.random.key(0), (4, O))
    x = jnp.full((4, H, A), K, jnp.int32)
    logits_fn = lambda x, t: policy.logits(params, obs, x, t)
    for steps in (1, 3):
      bins, value = masked.unmask_chunk(logits_fn, jax.random.key(steps), x,
                                        steps, K, 'sample', order)
      self.assertFalse(bool(jnp.any(bins == K)), (order, steps))
      np.testing.assert_allclose(value, policy.from_bins(bins))

  def test_random_order_unmasks_a_share_t_minus_s_over_t(self):
    # Two steps 1 -> 0.5 -> 0: the first unmasks each token w.p. 0.5.
    seen = []
    logits_fn = lambda x, t: (jax.debug.callback(seen.append, x),
                              jnp.zeros(x.shape + (K,)))[1]
    x = jnp.full((64, H, A), K, jnp.int32)  # 1024 tokens: s.e. 0.016.
    bins, _ = jax.jit(lambda x: masked.unmask_chunk(
        logits_fn, jax.random.key(0), x, 2, K, 'sample', 'random'))(x)
    jax.effects_barrier()
    self.assertFalse(bool(jnp.any(bins == K)))
    share = float((np.asarray(seen[1]) != K).mean())
    self.assertAlmostEqual(share, 0.5, delta=0.064)

  def test_confidence_order_unmasks_the_most_likely_first(self):
    # Logits put all mass on bin 3 at position 0 and are flat elsewhere:
    # with 2 steps the first unmasks the position-0 tokens among the half.
    def logits_fn(x, t):
      sharp = jnp.where(jnp.arange(K) == 3, 20.0, 0.0)
      out = jnp.zeros(x.shape + (K,))
      return out.at[:, 0].set(sharp)

    seen = []
    x = jnp.full((2, H, A), K, jnp.int32)
    jax.jit(lambda x: masked.unmask_chunk(
        lambda x, t: (jax.debug.callback(seen.append, x), logits_fn(x, t))[1],
        jax.random.key(0), x, 2, K, 'sample', 'confidence'))(x)
    jax.effects_barrier()
    second = np.asarray(seen[1])  # The input of the second step.
    self.assertTrue((second[:, 0] == 3).all())
    self.assertEqual(int((second != K).sum()), 2 * H * A // 2)

  @parameterized.parameters('exp', 'zeros')
  def test_committed_positions_come_back_exactly(self, schedule):
    policy = _policy()
    params = _perturbed_params(policy)
    _, seen = _counting(policy)
    obs, prev = testing.random_batch(4, O, H, A)
    out = policy.realtime_action(params, jax.random.key(2), obs, 5, prev, 3,
                                 5, schedule)
    y = policy.to_bins(prev)
    np.testing.assert_array_equal(out[:, :3], policy.from_bins(y[:, :3]))
    self.assertTrue(seen)
    for x in seen:  # Unmasked from the first step: every call sees y.
      np.testing.assert_array_equal(np.asarray(x)[:, :3], y[:, :3])
    self.assertTrue((np.asarray(seen[0])[:, 3:] == K).all())

  def test_given_soft_positions_start_unmasked_with_probability_w(self):
    policy = _policy(soft_positions='given', decode='sample')
    params = _perturbed_params(policy)
    _, seen = _counting(policy)
    b = 512
    obs = jax.random.normal(jax.random.key(0), (b, O))
    y = jax.random.randint(jax.random.key(1), (b, H, A), 0, K)
    w = jnp.array([1, 1, 0.8, 0.3, 0, 0, 0, 0], jnp.float32)
    committed = jnp.broadcast_to((w >= 1)[None], (b, H))
    out = jax.jit(policy._guided, static_argnums=(3,))(  # pylint: disable=protected-access
        params, jax.random.key(2), obs, 5, None, y, (y, w, 3.0), committed)
    jax.effects_barrier()
    first = np.asarray(seen[0])
    # At the first call: a position is given (y, unmasked) with
    # probability w, else masked; all action dimensions together.
    given = (first == np.asarray(y)).all(-1)
    masked = (first == K).all(-1)
    np.testing.assert_array_equal(given | masked, True)
    # 512 chunks: standard error <= 0.022; tolerance 0.07.
    np.testing.assert_allclose(given.mean(0), w, atol=0.07)
    # Given positions come back as y exactly.
    out_given = (np.asarray(out) == np.asarray(policy.from_bins(y))).all(-1)
    self.assertTrue(out_given[given].all())

  def test_training_time_prefix_is_clean_at_level_zero(self):
    policy = _policy(simulated_delay=4)
    params = _perturbed_params(policy)
    levels = []
    original = policy.logits
    policy.logits = lambda p, o, x, t, tilt=None: (
        jax.debug.callback(levels.append, jnp.broadcast_to(t, (2, H))),
        original(p, o, x, t))[1]
    obs = jnp.zeros((2, O))
    prev = jnp.full((2, H, A), 0.5)
    out = policy.training_time_action(params, jax.random.key(0), obs, 4,
                                      prev, 2)
    np.testing.assert_allclose(out[:, :2], policy.from_bins(
        policy.to_bins(prev))[:, :2])
    self.assertTrue(levels)
    for level in levels:
      np.testing.assert_array_equal(np.asarray(level)[:, :2], 0.0)
      self.assertTrue((np.asarray(level)[:, 2:] > 0).all())

  def test_early_start_makes_fewer_calls_and_stays_on_bin_centres(self):
    policy = _policy(decode='sample')
    params = _perturbed_params(policy)
    calls, _ = _counting(policy)
    obs, prev = testing.random_batch(4, O, H, A)
    realtime = jax.jit(policy.realtime_action, static_argnums=(3, 7))
    naive = jax.jit(policy.action, static_argnums=(3,))
    naive(params, jax.random.key(2), obs, 5).block_until_ready()
    jax.effects_barrier()
    naive_calls = len(calls)
    del calls[:]
    # Traced delay: H = 8, d = 3, N = 5 -> round(5 * 5 / 8) = 3 calls.
    out = realtime(params, jax.random.key(2), obs, 5, prev, jnp.int32(3),
                   jnp.int32(5), 'exp')
    jax.effects_barrier()
    self.assertEqual(naive_calls, 5)
    self.assertEqual(len(calls), 3)
    centres = np.asarray(bins.bin_centres(K))
    dist = np.abs(np.asarray(out)[..., None] - centres).min(-1)
    np.testing.assert_allclose(dist, 0.0, atol=1e-6)
    # Without early start: all 5.
    late = _policy(decode='sample', early_start=False)
    late_calls, _ = _counting(late)
    late.realtime_action(params, jax.random.key(2), obs, 5, prev, 3, 5)
    jax.effects_barrier()
    self.assertEqual(len(late_calls), 5)

  @parameterized.parameters(('random', 2, 2), ('confidence', 1, 1),
                            ('confidence', 3, 3), ('confidence', 2, 4))
  def test_early_stop_equals_full_decoding_where_it_is_used(self, order, d,
                                                            s):
    # Same keys: positions < d + s exactly equal full decoding's (tolerance
    # 0) over 8 seeds, so their distribution is the same; the others are
    # bin centres (filled), never left at 0 or the mask token.
    early = _policy(decode='sample', unmask_order=order, early_start=False,
                    early_stop=True)
    full = _policy(decode='sample', unmask_order=order, early_start=False)
    params = _perturbed_params(full)
    obs, prev = testing.random_batch(2, O, H, A)
    calls, _ = _counting(early)
    run = {p: jax.jit(lambda key, d, s, p=p: p.realtime_action(
        params, key, obs, 5, prev, d, H - s)) for p in (early, full)}
    centres = np.asarray(bins.bin_centres(K))
    used = []
    for seed in range(8):
      key = jax.random.key(seed)
      a = np.asarray(run[early](key, d, s))
      jax.effects_barrier()
      used.append(len(calls))
      del calls[:]
      b = np.asarray(run[full](key, d, s))
      np.testing.assert_array_equal(a[:, :d + s], b[:, :d + s])
      dist = np.abs(a[..., None] - centres).min(-1)
      np.testing.assert_allclose(dist, 0.0, atol=1e-6)
    # When it stops: test_early_stop_runs_one_step_when_nothing_is_left.
    self.assertTrue(all(1 <= n <= 5 for n in used), used)

  def test_early_stop_runs_one_step_when_nothing_is_left(self):
    # Every stop position given on entry: one step still draws every other
    # token, so nothing comes back masked.
    x = jnp.full((2, H, A), K, jnp.int32).at[:, :3].set(4)
    logits = lambda x, t: jnp.zeros(x.shape + (K,))
    calls = []
    def counted(x, t):
      jax.debug.callback(lambda: calls.append(1))
      return logits(x, t)
    stop = jnp.arange(H) < 3
    out, value = masked.unmask_chunk(counted, jax.random.key(0), x, 5, K,
                                     'sample', stop=stop)
    jax.effects_barrier()
    self.assertLen(calls, 1)
    self.assertFalse(np.any(np.asarray(out) == K))
    np.testing.assert_array_equal(np.asarray(out[:, :3]), 4)
    np.testing.assert_allclose(
        np.asarray(value[:, 3:]),
        np.asarray(bins.from_bins(out[:, 3:], K)), atol=1e-6)

  def test_bid_and_noise(self):
    policy = _policy()
    params = _perturbed_params(policy)
    obs = jax.random.normal(jax.random.key(0), (2, O))
    prev = jnp.zeros((2, H, A))
    out = policy.bid_action(params, jax.random.key(1), obs, 2, prev, 2, 5, 3)
    self.assertEqual(out.shape, (2, H, A))
    given = jnp.full((2, H, A), 5, jnp.int32)
    out = policy.action(params, jax.random.key(1), obs, 2, noise=given)
    np.testing.assert_allclose(out, policy.from_bins(given))
    with self.assertRaisesRegex(ValueError, 'noise must be tokens'):
      policy.action(params, jax.random.key(1), obs, 2,
                    noise=jnp.zeros((2, H), jnp.int32))


if __name__ == '__main__':
  absltest.main()
