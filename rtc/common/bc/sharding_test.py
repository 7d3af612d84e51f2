"""Tests for rtc.common.bc.sharding on 4 forced host devices."""

import os

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=4')

from absl.testing import absltest  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.bc import sharding


def _per_level(x, w, shared):
  # A small nonlinear computation with a per-level reduction.
  return {'y': jnp.tanh(x @ w + shared).sum(-1), 'n': jnp.linalg.norm(w)}


class LevelShardingTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.assertEqual(jax.local_device_count(), 4)
    k = jax.random.split(jax.random.key(0), 3)
    self.x = jax.random.normal(k[0], (3, 5, 7))  # 3 levels.
    self.w = jax.random.normal(k[1], (3, 7, 2))
    self.shared = jax.random.normal(k[2], (2,))

  def test_three_levels_on_four_devices_equals_one_device(self):
    multi = sharding.LevelSharding(3)
    self.assertEqual(multi.padded, 4)
    f = multi.map(_per_level, in_axes=(0, 0, None))
    out = f(*multi.pad((self.x, self.w)), self.shared)
    self.assertEqual(out['y'].shape, (4, 5))
    self.assertLen(out['y'].sharding.device_set, 4)
    out = multi.unpad(out)
    self.assertEqual(out['y'].shape, (3, 5))

    single = sharding.LevelSharding(3, devices=jax.local_devices()[:1])
    self.assertEqual(single.padded, 3)
    g = single.map(_per_level, in_axes=(0, 0, None))
    ref = single.unpad(g(*single.pad((self.x, self.w)), self.shared))
    np.testing.assert_allclose(out['y'], ref['y'], rtol=1e-6)
    np.testing.assert_allclose(out['n'], ref['n'], rtol=1e-6)
    # And against a plain per-level loop.
    for i in range(3):
      np.testing.assert_allclose(
          out['y'][i], _per_level(self.x[i], self.w[i], self.shared)['y'],
          rtol=1e-5)

  def test_more_devices_than_levels(self):
    multi = sharding.LevelSharding(1)
    f = multi.map(_per_level, in_axes=(0, 0, None))
    out = multi.unpad(f(*multi.pad((self.x[:1], self.w[:1])), self.shared))
    np.testing.assert_allclose(
        out['y'][0], _per_level(self.x[0], self.w[0], self.shared)['y'],
        rtol=1e-5)

  def test_process_local_pieces(self):
    # One process holds every slot; pads repeat the last level.
    multi = sharding.LevelSharding(3)
    self.assertEqual(multi.local_slots, [0, 1, 2, 3])
    self.assertEqual(multi.local_slot_levels, [0, 1, 2, 2])
    self.assertEqual(multi.local_levels, [0, 1, 2])
    self.assertEqual(multi.owned_levels, [0, 1, 2])
    local = np.asarray(self.x)[multi.local_slot_levels]
    from_local = multi.put_local(local)
    np.testing.assert_array_equal(np.asarray(from_local),
                                  np.asarray(multi.pad(self.x)))
    values = multi.local_values({'x': from_local})
    self.assertEqual(sorted(values), [0, 1, 2])
    for i in range(3):
      np.testing.assert_array_equal(values[i]['x'], np.asarray(self.x[i]))
    gathered = multi.gather(multi.pad(self.w))
    self.assertIsInstance(gathered, np.ndarray)
    np.testing.assert_array_equal(gathered[:3], np.asarray(self.w))
    np.testing.assert_array_equal(gathered[3], np.asarray(self.w[2]))
    with self.assertRaisesRegex(ValueError, 'leading local slot axis of 4'):
      multi.put_local(local[:3])

  def test_wrong_level_axis(self):
    with self.assertRaisesRegex(ValueError, 'leading level axis'):
      sharding.LevelSharding(3).pad(self.x[:2])


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
