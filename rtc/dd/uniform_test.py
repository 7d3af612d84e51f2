"""Tests for rtc.dd.uniform and rtc.dd.base (statistical ones use fixed
seeds and stated tolerances)."""

import itertools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.core import bins
from rtc.common.core import prefix
from rtc.common.testlib import testing
from rtc.dd import base
from rtc.dd import reverse
from rtc.dd import testing as dd_testing
from rtc.dd import uniform

O, A, H = 7, 3, 8
SMALL = base.ModelConfig(**testing.TINY_BACKBONE, num_bins=16,
                         bin_embedding_dim=4)
_perturbed_params = testing.perturbed_params


def _oracle_logits(target_bins, num_bins, sharpness=50.0):
  """A perfect x_0 predictor: logits peaked on the target bins."""
  def fn(x_t, level):
    del x_t, level
    return sharpness * jax.nn.one_hot(target_bins, num_bins)
  return fn


class BinsAndForwardProcessTest(parameterized.TestCase):

  @parameterized.parameters(16, 256)
  def test_binning_round_trip(self, k):
    a = jnp.linspace(-1.0, 1.0, 10001)
    back = bins.from_bins(bins.to_bins(a, k), k)
    self.assertLessEqual(float(jnp.max(jnp.abs(back - a))), 1.0 / k + 1e-6)
    x = bins.to_bins(a, k)
    self.assertEqual(int(x.min()), 0)
    self.assertEqual(int(x.max()), k - 1)
    # Out-of-range actions clip to the end bins.
    np.testing.assert_array_equal(
        bins.to_bins(jnp.array([-3.0, 3.0]), k), [0, k - 1])

  @parameterized.parameters(0.0, 0.3, 0.8, 1.0)
  def test_corruption_keep_probability(self, t):
    k, n = 8, 200_000
    x0 = jnp.zeros((n,), jnp.int32) + 3
    xt = uniform.corrupt(jax.random.key(0), x0, t, k)
    keep = float(jnp.mean(xt == x0))
    expected = 1 - t + t / k
    # Binomial std <= sqrt(0.25 / n) ~ 0.0011; tolerance 5 sigma.
    self.assertAlmostEqual(keep, expected, delta=0.006)
    if t > 0:
      # Replacements are uniform over all bins.
      counts = np.bincount(np.asarray(xt), minlength=k) / n
      others = np.delete(counts, 3)
      np.testing.assert_allclose(others, t / k, atol=0.004)

  def test_corruption_per_token_levels(self):
    x0 = jnp.zeros((4000, 2, 1), jnp.int32)
    level = jnp.broadcast_to(jnp.array([0.0, 1.0]), (4000, 2))
    xt = uniform.corrupt(jax.random.key(1), x0, level, 64)
    self.assertTrue(bool(jnp.all(xt[:, 0] == 0)))
    self.assertLess(float(jnp.mean(xt[:, 1] == 0)), 0.05)

  @parameterized.parameters((1.0, 0.5), (0.7, 0.2), (0.5, 0.0), (0.9, 0.85))
  def test_reverse_step_matches_enumeration(self, t, s):
    k = 5
    rng = np.random.default_rng(0)
    p0 = rng.dirichlet(np.ones(k), size=k)  # One p_theta per x_t value.
    xt = np.arange(k)
    got = np.asarray(reverse.reverse_probs(jnp.asarray(p0), jnp.asarray(xt),
                                           t, s))
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)

    def q(level, i, j):  # q(x_level = j | x_0 = i)
      return (1 - level) * (i == j) + level / k

    a = (1 - t) / (1 - s)

    def q_step(kk, j):  # q(x_t = j | x_s = kk)
      return a * (kk == j) + (1 - a) / k

    for j in xt:
      brute = np.zeros(k)
      for i, kk in itertools.product(range(k), range(k)):
        post = q_step(kk, j) * q(s, i, kk) / q(t, i, j)
        brute[kk] += p0[j, i] * post
      np.testing.assert_allclose(got[j], brute, atol=1e-6)
    if s == 0.0:
      np.testing.assert_allclose(got, p0, atol=1e-6)

  @parameterized.parameters(16, 12, 7)  # Blocks of 4, 3 and 1 bins.
  def test_sample_logits_frequencies(self, k):
    n = 40000
    logits = jax.random.normal(jax.random.key(0), (3, k))
    logits = logits.at[:, 2].set(-jnp.inf).at[1, k - 1].set(-jnp.inf)
    probs = np.asarray(jax.nn.softmax(logits, -1))
    draws = np.asarray(reverse.sample_logits(
        jax.random.key(1), jnp.broadcast_to(logits, (n, 3, k))))
    for row in range(3):
      freq = np.bincount(draws[:, row], minlength=k) / n
      # Std of a frequency <= sqrt(0.25 / n) = 0.0025; tolerance 5 sigma.
      np.testing.assert_allclose(freq, probs[row], atol=0.0125)
      self.assertEqual(freq[2], 0.0)  # Impossible bins are never drawn.
    self.assertEqual(np.sum(draws[:, 1] == k - 1), 0)

  def test_sample_logits_peaked(self):
    # Almost all mass in one bin, the rest underflowing to zero.
    logits = jnp.full((1000, 256), -200.0).at[:, 37].set(0.0)
    draws = reverse.sample_logits(jax.random.key(2), logits)
    np.testing.assert_array_equal(draws, 37)

  @parameterized.parameters(1, 2, 7, 16, 255, 256)
  def test_max_last(self, k):
    x = jax.random.normal(jax.random.key(k), (5, k))
    np.testing.assert_array_equal(reverse.max_last(x), jnp.max(x, -1))

  @parameterized.parameters((1.0, 0.8), (0.7, 0.2), (0.5, 0.0), (0.9, 0.85),
                            (0.2, 0.1))
  def test_reverse_mixture_equals_reverse_probs(self, t, s):
    k = 6
    rng = np.random.default_rng(1)
    p0 = jnp.asarray(rng.dirichlet(np.ones(k), size=k), jnp.float32)
    xt = jnp.arange(k)
    alpha, beta, gamma = reverse.reverse_mixture(p0[xt, xt], t, s, k)
    for part in (alpha, beta, gamma):
      self.assertTrue(bool(jnp.all(part >= 0)))
    np.testing.assert_allclose(alpha + beta + gamma, 1.0, atol=1e-5)
    mixture = (alpha[:, None] * p0 + beta[:, None] * jax.nn.one_hot(xt, k)
               + gamma[:, None] / k)
    np.testing.assert_allclose(mixture,
                               reverse.reverse_probs(p0, xt, t, s),
                               atol=1e-5)

  @parameterized.parameters((1.0, 0.8), (0.6, 0.4), (0.4, 0.0))
  def test_reverse_sample_frequencies(self, t, s):
    k, n = 8, 40000
    logits = 2.0 * jax.random.normal(jax.random.key(3), (2, k))
    xt = jnp.array([3, 6])
    expected = np.asarray(reverse.reverse_probs(
        jax.nn.softmax(logits, -1), xt, t, s))
    draws = np.asarray(reverse.reverse_sample(
        jax.random.key(4), jnp.broadcast_to(logits, (n, 2, k)),
        jnp.broadcast_to(xt, (n, 2)), t, s))
    for row in range(2):
      freq = np.bincount(draws[:, row], minlength=k) / n
      # Std of a frequency <= 0.0025; tolerance 5 sigma.
      np.testing.assert_allclose(freq, expected[row], atol=0.0125)

  def test_tilt_weight_zero_is_identity(self):
    logits = jax.random.normal(jax.random.key(0), (2, H, A, 16))
    y = jnp.full((2, H, A), 5, jnp.int32)
    w = jnp.zeros(H).at[:3].set(0.5)
    out = bins.tilt_logits(logits, y, w, 300.0)
    np.testing.assert_array_equal(out[:, 3:], logits[:, 3:])
    self.assertGreater(float(jnp.abs(out[:, :3] - logits[:, :3]).max()), 1.0)
    # The tilt is largest far from y's centre and zero at it.
    delta = np.asarray(out - logits)[0, 0, 0]
    self.assertEqual(int(np.argmax(delta)), 5)


class SamplerTest(parameterized.TestCase):

  def test_tilt_terms_equal_tilt(self):
    k = 16
    y = jax.random.randint(jax.random.key(0), (3, H, A), 0, k)
    w = prefix.prefix_weights(2, 6, H, 'exp')
    features, matrix = bins.tilt_terms(y, w, 7.0, k)
    self.assertEqual(features.shape, (3, H, 2 * A + 1))
    self.assertEqual(matrix.shape, (2 * A + 1, A * k))
    zeros = jnp.zeros((3, H, A, k))
    np.testing.assert_allclose((features @ matrix).reshape(3, H, A, k),
                               bins.tilt_logits(zeros, y, w, 7.0),
                               atol=1e-5)

  def test_network_tilt_equals_tilted_logits(self):
    policy = uniform.UniformPolicy(SMALL, O, A)
    params = _perturbed_params(policy)
    obs = jax.random.normal(jax.random.key(0), (4, O))
    x = jax.random.randint(jax.random.key(1), (4, H, A), 0, policy.num_bins)
    y = jax.random.randint(jax.random.key(2), (4, H, A), 0, policy.num_bins)
    w = prefix.prefix_weights(1, 6, H, 'exp')
    plain = policy.logits(params, obs, x, 0.4)
    tilted = policy.logits(params, obs, x, 0.4, tilt=(y, w, 30.0))
    np.testing.assert_allclose(tilted,
                               bins.tilt_logits(plain, y, w, 30.0),
                               rtol=1e-4, atol=1e-4)
    self.assertGreater(float(jnp.abs(tilted - plain).max()), 1.0)

  def test_oracle_sampler_returns_target(self):
    k = 16
    target = jax.random.randint(jax.random.key(0), (3, H, A), 0, k)
    x_init = jax.random.randint(jax.random.key(1), (3, H, A), 0, k)
    for steps in (1, 5):
      x0, _ = uniform.sample_chunk(_oracle_logits(target, k),
                                   jax.random.key(2), x_init, steps, k)
      np.testing.assert_array_equal(x0, target)

  def _sample_many(self, policy, params, obs, prev, d, end, schedule, g, n):
    fn = jax.jit(jax.vmap(
        lambda key: policy.realtime_action(params, key, obs, 4, prev, d, end,
                                           schedule, g)))
    return fn(jax.random.split(jax.random.key(3), n))

  def test_weight_one_positions_equal_previous_bins(self):
    policy = uniform.UniformPolicy(SMALL, O, A)
    params = _perturbed_params(policy)
    obs, prev = dd_testing.random_batch(4, O, H, A)
    y_centres = policy.from_bins(policy.to_bins(prev))
    for schedule, d, end, pinned in (('exp', 3, 6, 3), ('zeros', 2, 6, 2),
                                     ('ones', 1, 5, 5)):
      out = self._sample_many(policy, params, obs, prev, d, end, schedule,
                              100.0, 8)
      np.testing.assert_array_equal(
          out[:, :, :pinned], jnp.broadcast_to(y_centres[:, :pinned],
                                               out[:, :, :pinned].shape))
      # Unpinned positions are not simply copied.
      self.assertGreater(float(jnp.mean(out[:, :, pinned:] !=
                                        y_centres[None, :, pinned:])), 0.5)

  def test_weight_zero_positions_have_unguided_distribution(self):
    # Position-independent p_theta: each position's marginal is its own.
    k = 8
    logits = jax.random.normal(jax.random.key(0), (1, H, A, k))
    fn = lambda x, level: jnp.broadcast_to(logits, x.shape + (k,))
    y = jnp.zeros((1, H, A), jnp.int32)
    w = prefix.prefix_weights(2, 5, H, 'exp')
    n = 20000
    keys = jax.random.split(jax.random.key(1), n)
    x_init = jnp.zeros((1, H, A), jnp.int32)

    def draw(logits_fn, *constraint):
      def one(key):
        return uniform.sample_chunk(logits_fn, key, x_init, 3, k,
                                    *constraint)[0][0]
      return np.asarray(jax.jit(jax.vmap(one))(keys))

    tilted = lambda x, level: bins.tilt_logits(fn(x, level), y, w, 50.0)
    guided = draw(tilted, uniform.Constraint(y=y, pinned=w >= 1.0))
    plain = draw(fn)
    p_true = np.asarray(jax.nn.softmax(logits[0], -1))
    for h in (5, 6, 7):  # Weight 0.
      for a in range(A):
        freq_g = np.bincount(guided[:, h, a], minlength=k) / n
        freq_p = np.bincount(plain[:, h, a], minlength=k) / n
        # Std of a frequency <= sqrt(0.25 / n) = 0.0035; tolerance ~5 sigma.
        np.testing.assert_allclose(freq_g, p_true[h, a], atol=0.018)
        np.testing.assert_allclose(freq_p, p_true[h, a], atol=0.018)
    # Guided positions (0 < w < 1) move towards y = bin 0.
    self.assertGreater(np.mean(guided[:, 2:4] == 0),
                       np.mean(plain[:, 2:4] == 0) + 0.1)

  def test_distance_falls_with_weight_and_guidance(self):
    policy = uniform.UniformPolicy(SMALL, O, A)
    params = _perturbed_params(policy)
    obs, prev = dd_testing.random_batch(4, O, H, A)

    def dist(schedule, g, d=1, end=7):
      out = self._sample_many(policy, params, obs, prev, d, end, schedule, g,
                              16)
      return float(jnp.mean(jnp.abs(out[:, :, d:end] - prev[None, :, d:end])))

    d_none = dist('exp', 0.0)
    d_small = dist('exp', 30.0)
    d_large = dist('exp', 1000.0)
    self.assertLess(d_small, d_none)
    self.assertLess(d_large, d_small)
    # A larger weight (linear >= exp pointwise) at the same g: closer.
    self.assertLess(dist('linear', 30.0), d_small)

  def test_training_time_prefix_is_clean(self):
    cfg = base.ModelConfig(**{**SMALL.__dict__, 'simulated_delay': 4})
    policy = uniform.UniformPolicy(cfg, O, A)
    params = _perturbed_params(policy)
    obs, prev = dd_testing.random_batch(4, O, H, A)
    seen = []

    def record(x, level):
      seen.append((np.asarray(x), np.asarray(level)))

    def spy_logits(params, obs, x, level):
      jax.debug.callback(record, x, level)
      return uniform.UniformPolicy.logits(policy, params, obs, x, level)

    policy.logits = spy_logits
    out = policy.training_time_action(params, jax.random.key(2), obs, 3,
                                      prev, 3)
    y = policy.to_bins(prev)
    # The prefix comes back as the committed actions themselves.
    np.testing.assert_array_equal(out[:, :3], prev[:, :3])
    self.assertTrue(seen)
    for x, level in seen:  # Every network call saw the clean prefix.
      np.testing.assert_array_equal(x[:, :3], y[:, :3])
      np.testing.assert_array_equal(level[:, :3], 0.0)
      self.assertTrue(bool(jnp.all(level[:, 3:] > 0)))

  def test_noise_is_the_starting_point(self):
    policy = uniform.UniformPolicy(SMALL, O, A)
    params = _perturbed_params(policy)
    obs = jax.random.normal(jax.random.key(0), (2, O))
    noise = jnp.full((2, H, A), 3, jnp.int32)
    a = policy.action(params, jax.random.key(1), obs, 3, noise=noise)
    b = policy.action(params, jax.random.key(1), obs, 3, noise=noise)
    np.testing.assert_array_equal(a, b)
    with self.assertRaisesRegex(ValueError, 'noise'):
      policy.action(params, jax.random.key(1), obs, 3,
                    noise=jnp.zeros((2, H), jnp.int32))


class TrainingTest(absltest.TestCase):

  def test_learns_synthetic_mapping(self):
    obs, target = testing.synthetic_chunks(3, 64, O, H, A)
    policy = uniform.UniformPolicy(SMALL, O, A)
    params, _, m = testing.fit(policy, obs, target, 400)
    # Bin accuracy of x_0-prediction from clean-ish inputs, and sampling.
    sample = jax.jit(policy.action, static_argnums=(3,))(
        params, jax.random.key(0), obs, 8)
    acc = float(jnp.mean(policy.to_bins(sample) == policy.to_bins(target)))
    # Chance is 1/16; a learned mapping gets most bins exactly right.
    self.assertGreater(acc, 0.8)
    self.assertGreater(float(m['bin_accuracy']), 0.5)

  def test_training_time_prefix_excluded_from_loss(self):
    cfg = base.ModelConfig(**{**SMALL.__dict__, 'simulated_delay': 8})
    policy = uniform.UniformPolicy(cfg, O, A)
    params = _perturbed_params(policy)
    obs, action = dd_testing.random_batch(16, O, H, A)
    key = jax.random.key(5)
    level_rng, noise_rng, delay_rng = jax.random.split(key, 3)
    level = jax.random.uniform(level_rng, (16,))
    delay = np.asarray(prefix.sample_delays(delay_rng, 16, 8))
    mask = np.arange(H)[None, :] < delay[:, None]
    self.assertTrue(mask.any() and (~mask).any())
    token_level = np.where(mask, 0.0, np.asarray(level)[:, None])
    x0 = policy.to_bins(action)
    x_t = uniform.corrupt(noise_rng, x0, token_level, cfg.num_bins)
    np.testing.assert_array_equal(np.asarray(x_t)[mask],
                                  np.asarray(x0)[mask])  # Clean prefix.
    logp = jax.nn.log_softmax(policy.logits(params, obs, x_t, token_level))
    nll = -np.take_along_axis(np.asarray(logp), np.asarray(x0)[..., None],
                              -1)[..., 0]
    expected = nll[~mask].mean()
    got = float(policy.loss(params, key, obs, action))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    self.assertGreater(abs(nll.mean() - expected), 1e-4)


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
