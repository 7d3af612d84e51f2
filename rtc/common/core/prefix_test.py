"""Tests for rtc.common.core.prefix."""

import math

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from rtc.common.base import cache
from rtc.common.core import prefix


class PrefixWeightsTest(parameterized.TestCase):

  def test_worked_example(self):
    w = prefix.prefix_weights(2, 6, 10, 'linear')
    np.testing.assert_allclose(w, [1, 1, .8, .6, .4, .2, 0, 0, 0, 0], atol=1e-6)

  def test_exp_maps_linear_values(self):
    lin = np.asarray(prefix.prefix_weights(2, 6, 10, 'linear'))
    exp = np.asarray(prefix.prefix_weights(2, 6, 10, 'exp'))
    np.testing.assert_allclose(exp, lin * np.expm1(lin) / (math.e - 1),
                               atol=1e-6)
    # Strictly below linear in the open interval, equal at 0 and 1.
    self.assertTrue(np.all(exp[2:6] < lin[2:6]))
    np.testing.assert_array_equal(exp[:2], 1.0)  # Exactly: pins positions.

  @parameterized.parameters('ones', 'zeros', 'linear', 'exp')
  def test_end_below_start_lowers_start(self, schedule):
    # start=5, end=3: only positions < 3 may be 1, and positions >= 3 are 0.
    w = np.asarray(prefix.prefix_weights(5, 3, 8, schedule))
    np.testing.assert_allclose(w[3:], 0.0)
    np.testing.assert_allclose(w[:3], 1.0)

  def test_start_zero(self):
    np.testing.assert_allclose(prefix.prefix_weights(0, 4, 8, 'zeros'), 0.0)
    w = np.asarray(prefix.prefix_weights(0, 4, 8, 'linear'))
    np.testing.assert_allclose(w, [.8, .6, .4, .2, 0, 0, 0, 0], atol=1e-6)

  def test_end_equals_total(self):
    w = np.asarray(prefix.prefix_weights(2, 8, 8, 'linear'))
    np.testing.assert_allclose(
        w, [1, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7], atol=1e-6)
    np.testing.assert_allclose(prefix.prefix_weights(2, 8, 8, 'ones'), 1.0)

  @parameterized.named_parameters(
      ('ones', 'ones', [1, 1, 1, 1, 1, 1, 0, 0]),
      ('zeros', 'zeros', [1, 1, 0, 0, 0, 0, 0, 0]),
      ('linear', 'linear', [1, 1, .8, .6, .4, .2, 0, 0]),
  )
  def test_every_schedule(self, schedule, expected):
    np.testing.assert_allclose(
        prefix.prefix_weights(2, 6, 8, schedule), expected, atol=1e-6)

  def test_traced_start_and_end(self):
    f = jax.jit(lambda s, e: prefix.prefix_weights(s, e, 10, 'linear'))
    np.testing.assert_allclose(
        f(2, 6), [1, 1, .8, .6, .4, .2, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(f(0, 0), 0.0)

  def test_sample_delays_distribution(self):
    n, max_delay = 200000, 5
    d = np.asarray(prefix.sample_delays(jax.random.key(0), n, max_delay))
    self.assertEqual((d.min(), d.max()), (0, max_delay - 1))
    p = np.exp(-np.arange(max_delay))
    p /= p.sum()
    # Std of a frequency <= sqrt(0.25 / n) = 0.0011; tolerance ~5 sigma.
    np.testing.assert_allclose(np.bincount(d, minlength=max_delay) / n, p,
                               atol=0.006)

  def test_unknown_schedule(self):
    with self.assertRaisesRegex(ValueError, 'cosine'):
      prefix.prefix_weights(1, 4, 8, 'cosine')


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
