"""Tests of rtc.dd.maskgit: schedule, choice, early stop, adaptive steps.

Synthetic logits (no network): fast.
"""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from rtc.dd import maskgit

B, H, A, K = 4, 8, 2, 16


def peaked_logits(confident_positions: int):
  """logits_fn: positions < `confident_positions` put 0.99 of their mass on
  bin 3, the others are nearly uniform."""
  sharp = jnp.full((K,), -10.0).at[3].set(0.0)
  flat = jnp.linspace(0.0, 0.1, K)
  rows = jnp.where((jnp.arange(H) < confident_positions)[:, None, None],
                   sharp, flat)  # [H, 1, K]

  def fn(x):
    return jnp.broadcast_to(rows[None], x.shape + (K,))
  return fn


def sample(key, logits):
  return jax.random.categorical(key, logits)


class ScheduleTest(parameterized.TestCase):

  def test_cosine_mask_counts(self):
    unknown = jnp.array([30, 30, 30, 1, 0])
    counts = [np.asarray(maskgit.mask_count(unknown, j, 3)) for j in range(3)]
    # floor(30 (1 + cos(pi r)) / 2) at r = 1/3, 2/3, then 0; one unknown
    # token is never kept masked (at most n - 1).
    np.testing.assert_array_equal(counts[0], [22, 22, 22, 0, 0])
    np.testing.assert_array_equal(counts[1], [7, 7, 7, 0, 0])
    np.testing.assert_array_equal(counts[2], [0, 0, 0, 0, 0])

  @parameterized.parameters((0, 5), (3, 3), (4, 2), (7, 1))
  def test_adaptive_calls(self, delay, want):
    # N = 5, H = 8, A = 6: max(1, floor(5 (8 - d) 6 / 48)).
    got = maskgit.adaptive_calls(5, (8 - delay) * 6, 48)
    self.assertEqual(int(got), want)


class ChoiceTest(absltest.TestCase):

  def test_deterministic_keeps_lowest_masked_scores(self):
    score = jnp.array([[0.5, -2.0, -3.0, 1.0, -1.0]])
    masked = jnp.array([[True, True, False, True, True]])
    keep = maskgit.keep_masked(jax.random.key(0), score, masked,
                               jnp.array([2]), 0.0)
    # -3.0 is already unmasked: the two lowest masked are -2.0 and -1.0.
    np.testing.assert_array_equal(keep, [[False, True, False, False, True]])

  def test_gumbel_choice_noise(self):
    # Two masked tokens, one stays: the lower-scoring one stays with
    # probability sigmoid((1 - 0) / T) = 0.731 at T = 1 (4000 draws,
    # standard error 0.007; tolerance 0.03).
    score = jnp.zeros((4000, 2)).at[:, 1].set(1.0)
    masked = jnp.ones((4000, 2), bool)
    keep = maskgit.keep_masked(jax.random.key(1), score, masked,
                               jnp.ones((4000,), jnp.int32), 1.0)
    self.assertTrue(bool(jnp.all(jnp.sum(keep, -1) == 1)))
    self.assertAlmostEqual(float(jnp.mean(keep[:, 0])), 0.731, delta=0.03)


class DecodeTest(parameterized.TestCase):

  def test_full_decoding_fills_every_token_and_keeps_given_ones(self):
    x = jnp.full((B, H, A), K, jnp.int32).at[:, :2].set(7)
    for steps in (1, 3, 8):
      out, run = maskgit.decode(peaked_logits(4), sample,
                                jax.random.key(steps), x, steps, K)
      self.assertFalse(bool(jnp.any(out == K)))
      np.testing.assert_array_equal(out[:, :2], 7)
      self.assertEqual(int(run), steps)

  def test_each_step_unmasks_the_schedules_count(self):
    seen = []
    fn = peaked_logits(4)
    logits_fn = lambda x: (jax.debug.callback(seen.append, x), fn(x))[1]
    x = jnp.full((B, H, A), K, jnp.int32)
    jax.block_until_ready(maskgit.decode(logits_fn, sample,
                                         jax.random.key(0), x, 5, K))
    masked = [int(np.sum(np.asarray(s)[0] == K)) for s in seen]
    # 16 tokens: 16 on entry, then floor(16 (1 + cos(pi j / 5)) / 2).
    self.assertEqual(masked, [16, 14, 10, 5, 1])

  @parameterized.parameters(0.0, 1.0)
  def test_early_stop_returns_what_full_decoding_gives(self, tau):
    # The first 4 positions are confident, so they are unmasked first: with
    # 8 steps over 16 tokens they are all unmasked after step 4 (8 masked
    # left: floor(16 * (1 + cos(pi / 2)) / 2)). Same keys: the stopped
    # decoding's positions < 4 equal the full one's exactly (tolerance 0),
    # over 20 seeds; later positions are filled with draws.
    x = jnp.full((B, H, A), K, jnp.int32)
    stop = jnp.arange(H) < 4
    decode = jax.jit(lambda key, stop: maskgit.decode(
        peaked_logits(4), sample, key, x, 8, K, tau, stop=stop))
    full_decode = jax.jit(lambda key: maskgit.decode(
        peaked_logits(4), sample, key, x, 8, K, tau))
    runs = []
    for seed in range(20):
      key = jax.random.key(seed)
      early, run = decode(key, stop)
      full, _ = full_decode(key)
      np.testing.assert_array_equal(early[:, :4], full[:, :4])
      self.assertFalse(bool(jnp.any(early == K)))
      runs.append(int(run))
    if tau == 0.0:
      self.assertEqual(set(runs), {4})
    else:
      self.assertLess(np.mean(runs), 8)

  def test_traced_calls_and_stop_under_jit(self):
    x = jnp.full((B, H, A), K, jnp.int32)
    fn = jax.jit(lambda calls, stop_at: maskgit.decode(
        peaked_logits(0), sample, jax.random.key(0), x, 5, K, 0.0, calls,
        jnp.arange(H) < stop_at))
    for calls in (1, 3, 5):
      out, run = fn(calls, H)  # Every position must be filled: no stop.
      self.assertEqual(int(run), calls)
      self.assertFalse(bool(jnp.any(out == K)))


if __name__ == '__main__':
  absltest.main()
