"""Tests for rtc.common.core.backbone."""

from absl.testing import absltest
from absl.testing import parameterized
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.core import backbone
from rtc.common.testlib import testing


def _count(params):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def _net(config, out_dim):
  def fn(tokens, obs, time):
    return backbone.MixerBackbone(config, out_dim, name='net')(tokens, obs,
                                                               time)
  net = hk.without_apply_rng(hk.transform(fn))
  return hk.Transformed(jax.jit(net.init), jax.jit(net.apply))


def _perturb(params, seed=1):
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(tree, [
      x + 0.05 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


class BackboneTest(parameterized.TestCase):

  def test_flow_parameter_count(self):
    # The flow policy: tokens are the A=6 action dims, O=679, out_dim=A.
    net = _net(backbone.MixerConfig(), 6)
    params = jax.eval_shape(net.init, jax.random.key(0),
                            jnp.zeros((1, 8, 6)), jnp.zeros((1, 679)),
                            jnp.zeros((1,)))
    self.assertEqual(_count(params), 3_072_006)
    self.assertIn('net/in_proj', params)
    self.assertEqual(params['net/in_proj']['w'].shape, (685, 256))
    self.assertEqual(params['net/block_3/adaln_1']['w'].shape, (256, 768))

  def test_blocks_are_identity_at_init(self):
    def fn(x, time):
      block = backbone.MixerBlock(16, 64, name='block')
      cond = jnp.broadcast_to(time[:, None], (x.shape[0], 32))
      return block(x, cond)

    f = hk.without_apply_rng(hk.transform(fn))
    x = jax.random.normal(jax.random.key(0), (3, 8, 32))
    t = jnp.array([0.1, 0.5, 0.9])
    params = f.init(jax.random.key(1), x, t)
    np.testing.assert_array_equal(f.apply(params, x, t), x)
    # Once the adaLN weights are non-zero the block is no longer the identity.
    moved = _perturb(params)
    self.assertGreater(float(jnp.abs(f.apply(moved, x, t) - x).max()), 1e-3)

  @parameterized.parameters(0, 1)
  def test_per_token_equal_tokens_equals_per_example(self, seed):
    config = backbone.MixerConfig(**testing.TINY_BACKBONE)
    net = _net(config, 5)
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    tokens = jax.random.normal(k1, (4, 8, 3))
    obs = jax.random.normal(k2, (4, 11))
    time = jax.random.uniform(k3, (4,))
    params = _perturb(net.init(jax.random.key(0), tokens, obs, time), seed)
    per_example = net.apply(params, tokens, obs, time)
    per_token = net.apply(params, tokens, obs,
                          jnp.broadcast_to(time[:, None], (4, 8)))
    np.testing.assert_allclose(per_example, per_token, rtol=1e-5, atol=1e-5)
    # And different per-token times do change the output.
    other = net.apply(params, tokens, obs,
                      time[:, None] * jnp.linspace(0, 1, 8)[None])
    self.assertGreater(float(jnp.abs(other - per_example).max()), 1e-4)

  @parameterized.parameters(0, 1)
  def test_scalar_time_equals_per_example(self, seed):
    # A scalar time computes the conditioning once for the batch; the output
    # must match giving every example that time.
    config = backbone.MixerConfig(**testing.TINY_BACKBONE)
    net = _net(config, 5)
    k1, k2 = jax.random.split(jax.random.key(seed))
    tokens = jax.random.normal(k1, (4, 8, 3))
    obs = jax.random.normal(k2, (4, 11))
    params = _perturb(net.init(jax.random.key(0), tokens, obs, 0.3), seed)
    scalar = net.apply(params, tokens, obs, 0.3)
    self.assertEqual(scalar.shape, (4, 8, 5))
    per_example = net.apply(params, tokens, obs, jnp.full((4,), 0.3))
    np.testing.assert_allclose(scalar, per_example, rtol=1e-5, atol=1e-5)
    other = net.apply(params, tokens, obs, 0.7)
    self.assertGreater(float(jnp.abs(other - scalar).max()), 1e-4)

  def test_split_input_projection_equals_concatenation(self):
    def fn(tokens, obs):
      return backbone.InputProjection(16, name='in_proj')(tokens, obs)
    f = hk.without_apply_rng(hk.transform(fn))
    tokens = jax.random.normal(jax.random.key(0), (2, 8, 3))
    obs = jax.random.normal(jax.random.key(1), (2, 7))
    params = f.init(jax.random.key(2), tokens, obs)
    params = _perturb(params)
    full = jnp.concatenate(
        [tokens, jnp.broadcast_to(obs[:, None], (2, 8, 7))], -1)
    expected = full @ params['in_proj']['w'] + params['in_proj']['b']
    np.testing.assert_allclose(f.apply(params, tokens, obs), expected,
                               rtol=1e-5, atol=1e-5)

  @parameterized.parameters(1, 2, 40)  # 8 and 16 lookups <= 16 rows < 320.
  def test_table_lookup_projection(self, batch):
    tables = jax.random.normal(jax.random.key(0), (3, 16, 4))
    index = jax.random.randint(jax.random.key(1), (batch, 8, 3), 0, 16)
    lookup = backbone.TableLookup(tables, index)
    self.assertEqual(lookup.shape, (batch, 8, 12))
    expected = np.concatenate(
        [np.asarray(tables)[s][np.asarray(index)[..., s]] for s in range(3)],
        axis=-1)
    np.testing.assert_array_equal(lookup.features(), expected)
    w = jax.random.normal(jax.random.key(2), (12, 5))
    np.testing.assert_allclose(lookup.project(w), expected @ np.asarray(w),
                               rtol=1e-5, atol=1e-5)

  @parameterized.parameters((2, False), (2, True), (300, False), (300, True))
  def test_project_equals_unfused(self, rows, with_extra):
    # 2 rows: the plain form; 300 rows: bias and extra terms in the matmul.
    keys = jax.random.split(jax.random.key(rows), 5)
    x = jax.random.normal(keys[0], (rows, 3, 8))
    w = jax.random.normal(keys[1], (8, 40))
    b = jax.random.normal(keys[2], (40,))
    extra = None
    expected = np.asarray(x) @ np.asarray(w) + np.asarray(b)
    if with_extra:
      extra = (jax.random.normal(keys[3], (rows, 3, 2)),
               jax.random.normal(keys[4], (2, 40)))
      expected = expected + np.asarray(extra[0]) @ np.asarray(extra[1])
    np.testing.assert_allclose(backbone.project(x, w, b, extra), expected,
                               rtol=1e-5, atol=1e-4)

  def test_token_mix_mixes_tokens_per_channel(self):
    f = hk.without_apply_rng(hk.transform(
        lambda y: backbone.token_mix(y, 16)))
    y = jax.random.normal(jax.random.key(0), (3, 8, 5))
    params = f.init(jax.random.key(1), y)
    w_in = np.asarray(params['token_mix_in']['w'])
    w_out = np.asarray(params['token_mix_out']['w'])
    self.assertEqual((w_in.shape, w_out.shape), ((8, 16), (16, 8)))
    # The published form: Linear layers over the transposed [B, C, H].
    hidden = np.asarray(jax.nn.gelu(np.swapaxes(np.asarray(y), 1, 2) @ w_in))
    expected = np.swapaxes(hidden @ w_out, 1, 2)
    np.testing.assert_allclose(f.apply(params, y), expected, rtol=1e-5,
                               atol=1e-5)

  def test_layer_norm(self):
    # A large common offset: the centred (two-pass) variance stays accurate
    # in float32, where E[x^2] - E[x]^2 loses every digit.
    x = 1000.0 + np.random.default_rng(0).normal(size=(3, 64)) * 0.01
    x64 = x - x.mean(-1, keepdims=True)
    expected = x64 / np.sqrt((x64**2).mean(-1, keepdims=True)
                             + backbone.LAYER_NORM_EPS)
    got = backbone.layer_norm(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-2)
    centred = backbone.layer_norm(jnp.asarray(x64, jnp.float32))
    np.testing.assert_allclose(centred, expected, rtol=0, atol=1e-4)

  def test_posemb_sincos(self):
    emb = backbone.posemb_sincos(jnp.array([0.0, 0.25]), 8)
    self.assertEqual(emb.shape, (2, 8))
    np.testing.assert_allclose(emb[0], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-6)
    # The largest period is 4.0: sin(2*pi*0.25/4).
    np.testing.assert_allclose(emb[1, 3], np.sin(2 * np.pi * 0.25 / 4.0),
                               atol=1e-6)

  def test_bad_shapes(self):
    net = _net(backbone.MixerConfig(channel_dim=8, channel_hidden_dim=8,
                                    token_hidden_dim=4, num_layers=1), 2)
    with self.assertRaisesRegex(ValueError, 'tokens'):
      net.init(jax.random.key(0), jnp.zeros((1, 5, 2)), jnp.zeros((1, 3)),
               jnp.zeros((1,)))
    with self.assertRaisesRegex(ValueError, 'time'):
      net.init(jax.random.key(0), jnp.zeros((1, 8, 2)), jnp.zeros((1, 3)),
               jnp.zeros((1, 3)))

  def test_config_validation(self):
    with self.assertRaisesRegex(ValueError, 'simulated_delay'):
      backbone.MixerConfig(simulated_delay=9)


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
