"""Running per-level computations sharded over all local devices.

Everything rtc does per level (training L policies, evaluating them, PPO over
seeds x levels) is a function of one level vmapped over a leading level axis.
`LevelSharding` runs such a function with that axis split over every local
device, for any device count: the level axis is padded (with copies of the
last level) up to a multiple of the device count, so 3 levels run on 4
devices, and results are sliced back to the real levels.

The vmapped function runs under `jax.shard_map`, so each device computes its
own levels with no communication. On one device this is a plain jit(vmap).
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = 'levels'


class LevelSharding:
  """Pads, shards and maps functions over a leading level axis."""

  def __init__(self, num_levels: int, devices=None):
    if num_levels < 1:
      raise ValueError(f'num_levels must be >= 1, got {num_levels}.')
    self.devices = list(devices if devices is not None else
                        jax.local_devices())
    self.num_levels = num_levels
    n = len(self.devices)
    self.padded = -(-num_levels // n) * n
    self.mesh = jax.sharding.Mesh(np.array(self.devices), (AXIS,))
    self.sharded = NamedSharding(self.mesh, P(AXIS))
    self.replicated = NamedSharding(self.mesh, P())

  def pad(self, tree):
    """Pads the leading level axis and places it sharded over devices."""
    extra = self.padded - self.num_levels

    def _pad(x):
      xp = jnp if isinstance(x, jax.Array) else np
      if x.shape[0] != self.num_levels:
        raise ValueError(f'Expected a leading level axis of '
                         f'{self.num_levels}, got shape {x.shape}.')
      if extra:
        x = xp.concatenate([x, xp.repeat(x[-1:], extra, axis=0)], axis=0)
      return jax.device_put(x, self.sharded)

    return jax.tree.map(_pad, tree)

  def unpad(self, tree):
    """Slices the padded level axis back to the real levels (on host)."""
    return jax.tree.map(lambda x: np.asarray(x)[:self.num_levels],
                        jax.device_get(tree))

  def replicate(self, tree):
    return jax.device_put(tree, self.replicated)

  def map(self, fn: Callable, in_axes, donate_argnums=()):
    """jit(shard_map(vmap(fn))) over padded level axes.

    `in_axes` has 0 for arguments with a (padded) level axis and None for
    arguments shared by all levels (replicated to every device). Every output
    carries the padded level axis. Bind static settings with a closure.
    """
    in_axes = tuple(in_axes)
    specs = tuple(P(AXIS) if ax == 0 else P() for ax in in_axes)
    per_shard = jax.vmap(fn, in_axes=in_axes)
    return jax.jit(
        jax.shard_map(per_shard, mesh=self.mesh, in_specs=specs,
                      out_specs=P(AXIS), check_vma=False),
        donate_argnums=donate_argnums)
