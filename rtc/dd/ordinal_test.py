"""Tests for rtc.dd.ordinal and the DD model's ordinal options (tiny shapes;
the learning test uses a fixed seed and a stated MAE)."""

from absl.testing import absltest
from absl.testing import parameterized
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rtc.common.core import bins
from rtc.dd import base
from rtc.dd import model as dd_model
from rtc.dd import ordinal

O, A, H = 5, 2, 4
TINY = dict(channel_dim=32, channel_hidden_dim=64, token_hidden_dim=16,
            num_layers=1, action_chunk_size=H, num_bins=32,
            bin_embedding_dim=8)
ORDINAL = dict(target_sigma=1.0, centre_features=True, ordinal_head=8)


class TargetTest(parameterized.TestCase):

  @parameterized.parameters((16, 1.0), (64, 0.75), (64, 3.0))
  def test_target_sums_to_one_and_peaks_at_the_true_bin(self, k, sigma):
    table = np.asarray(ordinal.smoothed_target_table(k, sigma))
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(table.argmax(axis=1), np.arange(k))
    self.assertTrue(np.all(table >= 0))
    # Smoothing spreads mass: the true bin holds less than all of it.
    self.assertLess(float(table[k // 2, k // 2]), 0.9)

  def test_small_sigma_is_one_hot_cross_entropy(self):
    k = 16
    logits = jax.random.normal(jax.random.key(0), (3, 5, k)) * 3.0
    x0 = jax.random.randint(jax.random.key(1), (3, 5), 0, k)
    one_hot = ordinal.smoothed_cross_entropy(logits, x0, 0.0)
    expected = -jnp.take_along_axis(jax.nn.log_softmax(logits), x0[..., None],
                                    -1)[..., 0]
    np.testing.assert_allclose(one_hot, expected, rtol=1e-6)
    tiny = ordinal.smoothed_cross_entropy(logits, x0, 1e-3)
    np.testing.assert_allclose(tiny, expected, rtol=1e-5)
    np.testing.assert_allclose(ordinal.smoothed_target_table(k, 1e-3),
                               np.eye(k), atol=1e-6)

  def test_a_near_miss_costs_less_than_a_far_one(self):
    k, true_bin = 32, 10
    near = 8.0 * jax.nn.one_hot(true_bin + 1, k)
    far = 8.0 * jax.nn.one_hot(true_bin + 12, k)
    x0 = jnp.array(true_bin)
    smooth = [float(ordinal.smoothed_cross_entropy(l, x0, 1.0))
              for l in (near, far)]
    self.assertLess(smooth[0], smooth[1] - 1.0)
    # One-hot cross-entropy cannot tell them apart.
    hard = [float(ordinal.smoothed_cross_entropy(l, x0, 0.0))
            for l in (near, far)]
    self.assertAlmostEqual(hard[0], hard[1], places=5)

  def test_options_are_validated(self):
    with self.assertRaisesRegex(ValueError, 'model.decode must be one of'):
      base.ModelConfig(decode='median')
    with self.assertRaisesRegex(ValueError, 'model.target_sigma must be'):
      base.ModelConfig(target_sigma=-1.0)
    with self.assertRaisesRegex(ValueError, 'model.ordinal_head must be'):
      base.ModelConfig(ordinal_head=1)


class FeaturesTest(absltest.TestCase):

  def _table(self, centre):
    def fn(x):
      return base.BinEmbedding(A, 64, 16, centre)(x).features()

    net = hk.without_apply_rng(hk.transform(fn))
    bins = jnp.arange(64)[None, :, None].repeat(A, axis=-1)  # [1, K, A]
    params = net.init(jax.random.key(0), bins)
    return np.asarray(net.apply(params, bins)[0, :, :16])  # Dimension 0.

  def test_neighbouring_bins_start_closer_than_far_ones(self):
    feats = self._table(centre=True)
    dist = np.linalg.norm(feats[:, None] - feats[None], axis=-1)
    k = len(feats)
    near = np.array([dist[i, i + 1] for i in range(k - 1)])
    for gap in (8, 16, 32):
      far = np.array([dist[i, i + gap] for i in range(k - gap)])
      self.assertLess(near.max(), far.min(), msg=f'gap {gap}')
    # The seed's free table has no such order.
    free = self._table(centre=False)
    dist = np.linalg.norm(free[:, None] - free[None], axis=-1)
    near = np.array([dist[i, i + 1] for i in range(k - 1)])
    far = np.array([dist[i, i + 32] for i in range(k - 32)])
    self.assertGreater(near.max(), far.min())

  def test_ordinal_head_starts_as_the_seed_and_shapes_the_logits(self):
    seed = dd_model.make_policy(TINY, O, A)
    head = dd_model.make_policy(dict(TINY, ordinal_head=4), O, A)
    params = head.init(jax.random.key(0))
    self.assertEqual(params[base.HEAD]['weights'].shape, (32, A, 4))
    seed_params = {k: v for k, v in params.items() if k != base.HEAD}
    obs = jax.random.normal(jax.random.key(1), (2, O))
    x = jnp.zeros((2, H, A), jnp.int32)
    np.testing.assert_allclose(head.logits(params, obs, x, 0.5),
                               seed.logits(seed_params, obs, x, 0.5),
                               atol=1e-6)
    # A unit weight from channel 0 to the basis' first function (the centre
    # c) adds h_0 * c_k to bin k's logit: a slope constant over the bins.
    params[base.HEAD]['weights'] = jnp.zeros((32, A, 4)).at[0, :, 0].set(
        1.0)
    diff = head.logits(params, obs, x, 0.5) - seed.logits(seed_params, obs,
                                                          x, 0.5)
    slope = diff[..., 1:] - diff[..., :-1]
    np.testing.assert_allclose(slope, slope[..., :1] * jnp.ones_like(slope),
                               atol=1e-3)
    self.assertGreater(float(jnp.max(jnp.abs(slope))), 1e-3)


class DecodeTest(parameterized.TestCase):

  def test_decodes_of_given_logits(self):
    k = 8
    centres = np.asarray(bins.bin_centres(k))
    logits = jnp.log(jnp.array([[0.1, 0.6, 0.3, 0, 0, 0, 0, 0]]) + 1e-12)
    x0 = jnp.array([2])
    self.assertAlmostEqual(float(ordinal.decode(x0, logits, 'sample')[0]),
                           centres[2], places=6)
    self.assertAlmostEqual(float(ordinal.decode(x0, logits, 'mode')[0]),
                           centres[1], places=6)
    self.assertAlmostEqual(
        float(ordinal.decode(x0, logits, 'expected_value')[0]),
        0.1 * centres[0] + 0.6 * centres[1] + 0.3 * centres[2], places=5)

  @parameterized.parameters(*ordinal.DECODES)
  def test_every_decode_stays_in_range(self, how):
    policy = dd_model.make_policy(dict(TINY, decode=how), O, A)
    params = policy.init(jax.random.key(0))
    params = jax.tree.map(lambda x: x + 0.5 * jax.random.normal(
        jax.random.key(3), x.shape), params)
    obs = 3.0 * jax.random.normal(jax.random.key(1), (16, O))
    out = np.asarray(policy.action(params, jax.random.key(2), obs, 2))
    self.assertEqual(out.shape, (16, H, A))
    self.assertTrue(np.all(np.abs(out) <= 1.0))
    if how in ('sample', 'mode'):
      centres = np.asarray(bins.bin_centres(TINY['num_bins']))
      self.assertTrue(np.all(np.min(np.abs(out[..., None] - centres), -1)
                             < 1e-6))

  def test_old_runs_expected_value_output_reads_as_decode(self):
    legacy = dict(TINY)
    for value, want in ((True, 'expected_value'), (False, 'sample')):
      policy = dd_model.make_policy(dict(legacy, expected_value_output=value),
                                    O, A)
      self.assertEqual(policy.config.decode, want)
    # An evaluation's model.decode wins over the old option.
    policy = dd_model.make_policy(
        dict(legacy, expected_value_output=True, decode='mode'), O, A)
    self.assertEqual(policy.config.decode, 'mode')
    self.assertEqual(dd_model.make_policy(legacy, O, A).config.decode,
                     'sample')


class LearningTest(absltest.TestCase):
  """A tiny DD with the ordinal options learns the synthetic regression of
  `bazel run //rtc/bench:dd_learning` (smaller) within a stated budget.

  It reaches MAE 0.051 here (goal 0.1). In a run of the same setting
  with other random streams, the seed's model (one-hot targets, free table,
  no head, sampled bins) was still at 0.42 / 0.39 after 200 / 300 steps
  (by hand, 2026-11-30), so the test fails without the ordinal options."""

  def test_tiny_ordinal_dd_learns_the_synthetic_task(self):
    steps, batch, mae_goal = STEPS, 64, MAE_GOAL
    w = jax.random.normal(jax.random.key(7), (O, H * A)) / O**0.5

    def sample(key, n):
      obs = jax.random.normal(key, (n, O))
      return obs, 0.9 * jnp.tanh(obs @ w).reshape(n, H, A)

    policy = dd_model.make_policy(dict(TINY, decode='expected_value',
                                       **ORDINAL), O, A)
    opt = optax.adam(3e-3)
    params = policy.init(jax.random.key(0))

    def train(params, key):
      def body(carry, k):
        params, state = carry
        obs, chunk = sample(jax.random.fold_in(k, 0), batch)
        grads = jax.grad(policy.loss)(params, k, obs, chunk)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

      (params, _), _ = jax.lax.scan(body, (params, opt.init(params)),
                                    jax.random.split(key, steps))
      return params

    params = jax.jit(train)(params, jax.random.key(1))
    obs, chunk = sample(jax.random.key(2), 256)
    out = policy.action(params, jax.random.key(3), obs, 5)
    mae = float(jnp.mean(jnp.abs(out - chunk)))
    self.assertLess(mae, mae_goal)


STEPS, MAE_GOAL = 250, 0.1

if __name__ == '__main__':
  absltest.main()
