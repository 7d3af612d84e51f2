"""The policy contract (rtc.common.core.policy), checked on every registered family.

Tiny shapes: B=2 observations of O=5, chunks of H=4 by A=3, a one-layer
backbone; every check runs the family's own code on them, jitted once per
family (eager sampling loops would compile their bodies on every call).
"""

import functools
import importlib
import inspect
import types

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.core import policy as policy_lib
from rtc.common.core import registry

B, O, H, A = 2, 5, 4, 3
DELAY = 2


def tiny_policy(kind):
  """The family's default model options (configs/<kind>.py) made tiny,
  trained with a simulated delay (so `training_time_action` applies)."""
  model = importlib.import_module(f'configs.{kind}').get_config().model
  for name, value in _TINY.items():
    if name in model:
      model[name] = value
  return registry.make_policy(kind)(model, O, A)


_TINY = {'channel_dim': 8, 'channel_hidden_dim': 8, 'token_hidden_dim': 4,
         'num_layers': 1, 'action_chunk_size': H, 'simulated_delay': DELAY,
         'num_bins': 16, 'bin_embedding_dim': 4}


@functools.cache
def _family(kind):
  """(policy, params, its methods jitted) for `kind`."""
  policy = tiny_policy(kind)
  jitted = types.SimpleNamespace(
      action=jax.jit(policy.action, static_argnums=3),
      realtime_action=jax.jit(policy.realtime_action, static_argnums=(3, 7)),
      training_time_action=jax.jit(policy.training_time_action,
                                   static_argnums=3),
      bid_action=jax.jit(policy.bid_action, static_argnums=(3, 7)),
      loss_and_metrics=jax.jit(policy.loss_and_metrics),
      loss=jax.jit(policy.loss),
      grad=jax.jit(jax.grad(policy.loss)))
  return policy, jax.jit(policy.init)(jax.random.key(0)), jitted


class ContractTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.obs = jax.random.normal(jax.random.key(1), (B, O))
    self.action = jnp.tanh(jax.random.normal(jax.random.key(2), (B, H, A)))

  def _policy(self, kind):
    return _family(kind)

  @parameterized.parameters(*registry.kinds())
  def test_is_a_chunk_policy_of_its_kind(self, kind):
    policy, params, _ = self._policy(kind)
    self.assertIsInstance(policy, policy_lib.ChunkPolicy)
    self.assertEqual(policy.kind, kind)
    self.assertEqual((policy.obs_dim, policy.chunk_size, policy.action_dim),
                     (O, H, A))
    self.assertEqual(
        jax.tree.map(lambda x: (x.shape, x.dtype), policy.param_shapes()),
        jax.tree.map(lambda x: (x.shape, x.dtype), params))

  @parameterized.parameters(*registry.kinds())
  def test_methods_keep_the_contract_signatures(self, kind):
    cls = type(tiny_policy(kind))
    for name in ('action', 'realtime_action', 'training_time_action',
                 'loss_and_metrics', 'bid_action', 'loss'):
      self.assertEqual(
          list(inspect.signature(getattr(cls, name)).parameters),
          list(inspect.signature(getattr(policy_lib.ChunkPolicy,
                                         name)).parameters), name)

  @parameterized.parameters(*registry.kinds())
  def test_sampling_methods_return_chunks(self, kind):
    _, params, fn = self._policy(kind)
    key = jax.random.key(3)
    prev = fn.action(params, jax.random.key(4), self.obs, 2)
    chunks = {
        'action': fn.action(params, key, self.obs, 2),
        'realtime': fn.realtime_action(params, key, self.obs, 2, prev,
                                       DELAY, H - DELAY),
        'hard_masking': fn.realtime_action(
            params, key, self.obs, 2, prev, DELAY, H - DELAY, 'zeros'),
        'training_time': fn.training_time_action(
            params, key, self.obs, 2, prev, DELAY),
        'bid': fn.bid_action(params, key, self.obs, 2, prev, DELAY,
                             H - DELAY, 3),
    }
    for name, chunk in chunks.items():
      self.assertEqual(chunk.shape, (B, H, A), name)
      self.assertEqual(chunk.dtype, jnp.float32, name)
      self.assertTrue(np.all(np.isfinite(chunk)), name)
    # Same key, same chunk; the training-time prefix is the previous one's.
    np.testing.assert_array_equal(chunks['action'],
                                  fn.action(params, key, self.obs, 2))
    np.testing.assert_array_equal(chunks['training_time'][:, :DELAY],
                                  prev[:, :DELAY])

  @parameterized.parameters(*registry.kinds())
  def test_bid_picks_one_of_the_sampled_chunks(self, kind):
    _, params, fn = self._policy(kind)
    key = jax.random.key(5)
    prev = fn.action(params, jax.random.key(6), self.obs, 2)
    n = 3
    chosen = fn.bid_action(params, key, self.obs, 2, prev, DELAY,
                           H - DELAY, n)
    candidates = fn.action(params, key, jnp.tile(self.obs, (n, 1)),
                           2).reshape(n, B, H, A)
    for b in range(B):  # (Separately compiled: equal up to rounding.)
      self.assertTrue(any(np.allclose(chosen[b], candidates[i, b],
                                      atol=1e-5) for i in range(n)), b)

  @parameterized.parameters(*registry.kinds())
  def test_loss_is_a_differentiable_scalar(self, kind):
    _, params, fn = self._policy(kind)
    key = jax.random.key(7)
    loss, metrics = fn.loss_and_metrics(params, key, self.obs, self.action)
    self.assertEqual(loss.shape, ())
    self.assertTrue(np.isfinite(loss))
    self.assertTrue(metrics)
    for name, value in metrics.items():
      self.assertEqual(np.shape(value), (), name)
    self.assertAlmostEqual(
        float(fn.loss(params, key, self.obs, self.action)), float(loss),
        places=5)
    grads = fn.grad(params, key, self.obs, self.action)
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    self.assertTrue(all(np.isfinite(norms)))
    self.assertGreater(max(norms), 0.0)

  @parameterized.parameters(*registry.kinds())
  def test_loss_rejects_a_chunk_of_the_wrong_shape(self, kind):
    policy, params, _ = self._policy(kind)
    with self.assertRaisesRegex(
        ValueError, rf'action must have shape \({B}, {H}, {A}\), got '
        rf'\({B}, {H - 1}, {A}\)'):
      policy.loss(params, jax.random.key(0), self.obs, self.action[:, 1:])


class MakerTest(absltest.TestCase):

  def test_builds_from_a_dict_or_config_dict_through_the_config_class(self):
    seen = []

    class Config:

      def __init__(self, **options):
        seen.append(options)
        self.action_chunk_size = options['action_chunk_size']

    class Policy(policy_lib.ChunkPolicy):
      action = realtime_action = training_time_action = None
      loss_and_metrics = None

      def __init__(self, config, obs_dim, action_dim):
        super().__init__(config, obs_dim, action_dim, lambda *a: None)

    make = policy_lib.maker(Policy, Config)
    built = make({'action_chunk_size': 3, 'x': 1}, 7, 2)
    self.assertIsInstance(built, Policy)
    self.assertEqual((built.chunk_size, built.obs_dim, built.action_dim),
                     (3, 7, 2))
    self.assertEqual(seen, [{'action_chunk_size': 3, 'x': 1}])
    self.assertIn('Policy', make.__doc__)

  def test_a_family_must_implement_the_abstract_methods(self):

    class Incomplete(policy_lib.ChunkPolicy):

      def action(self, params, rng, obs, num_steps, noise=None):
        return obs

    with self.assertRaisesRegex(TypeError, 'abstract'):
      Incomplete(None, 1, 1, lambda *a: None)


if __name__ == '__main__':
  absltest.main()
