"""Running per-level computations sharded over every device of the job.

Everything rtc does per level (training L policies, evaluating them, PPO over
seeds x levels) is a function of one level vmapped over a leading level axis.
`LevelSharding` runs such a function with that axis split over one mesh of
every device of every process (rtc.common.bc.distributed; one process: its local
devices), for any device count: the level axis is padded up to a multiple of
the device count with copies of the last level, so 3 levels run on 4 devices,
and results are sliced back to the real levels.

Padded slot i holds level min(i, L - 1) and lives on device i // (P / n) of
the mesh, whose devices are ordered by process, so each process holds one
contiguous run of slots (`local_slots`). Inputs become global arrays in two
ways:

* `pad(tree)`: a value every process has whole (keys, level states, small
  parameters); each process places only its own slots.
* `put_local(tree)`: process-local data, one row per local slot
  (`local_slot_levels`), e.g. the batches of the levels this process loaded;
  `jax.make_array_from_process_local_data` joins them.

`unpad` gathers to every process (a collective: all processes call it);
`local_values` returns this process's own levels without communication.

The vmapped function runs under `jax.shard_map`, so each device computes its
own levels with no communication. On one device this is a plain jit(vmap).
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from rtc.common.bc import distributed

AXIS = 'levels'


class LevelSharding:
  """Pads, shards and maps functions over a leading level axis."""

  def __init__(self, num_levels: int, devices=None):
    if num_levels < 1:
      raise ValueError(f'num_levels must be >= 1, got {num_levels}.')
    devices = list(devices if devices is not None else jax.devices())
    self.devices = sorted(devices, key=lambda d: (d.process_index, d.id))
    self.num_levels = num_levels
    n = len(self.devices)
    self.padded = -(-num_levels // n) * n
    per_device = self.padded // n
    me = jax.process_index()
    self.local_slots = [i for i in range(self.padded)
                        if self.devices[i // per_device].process_index == me]
    self.multiprocess = any(d.process_index != me for d in self.devices)
    self.mesh = jax.sharding.Mesh(np.array(self.devices), (AXIS,))
    self.sharded = NamedSharding(self.mesh, P(AXIS))
    self.replicated = NamedSharding(self.mesh, P())

  @property
  def local_slot_levels(self) -> list[int]:
    """The level of each local slot (pads repeat the last level)."""
    return [min(i, self.num_levels - 1) for i in self.local_slots]

  @property
  def local_levels(self) -> list[int]:
    """The levels whose data this process needs, sorted."""
    return sorted(set(self.local_slot_levels))

  @property
  def owned_levels(self) -> list[int]:
    """The real levels this process holds: it alone writes their outputs."""
    return [i for i in self.local_slots if i < self.num_levels]

  def _check(self, x, n, what):
    if x.shape[0] != n:
      raise ValueError(f'Expected a leading {what} axis of {n}, got shape '
                       f'{x.shape}.')

  def pad(self, tree):
    """Pads the leading level axis and places it sharded over devices.

    Every process passes the same whole value [L, ...]."""
    extra = self.padded - self.num_levels

    def _pad(x):
      self._check(x, self.num_levels, 'level')
      if not self.multiprocess:
        xp = jnp if isinstance(x, jax.Array) else np
        if extra:
          x = xp.concatenate([x, xp.repeat(x[-1:], extra, axis=0)], axis=0)
        return jax.device_put(x, self.sharded)
      x = np.asarray(x)
      rows = np.minimum(np.arange(self.padded), self.num_levels - 1)
      return jax.make_array_from_callback(
          (self.padded,) + x.shape[1:], self.sharded,
          lambda idx: x[rows[idx[0]]])

    return jax.tree.map(_pad, tree)

  def put_local(self, tree):
    """Process-local rows [len(local_slots), ...] -> global [padded, ...]."""

    def _put(x):
      self._check(x, len(self.local_slots), 'local slot')
      if not self.multiprocess:
        return jax.device_put(x, self.sharded)
      return jax.make_array_from_process_local_data(
          self.sharded, np.asarray(x), (self.padded,) + x.shape[1:])

    return jax.tree.map(_put, tree)

  def gather(self, tree):
    """The whole padded value on every process (host numpy)."""
    if not self.multiprocess:
      return jax.tree.map(np.asarray, jax.device_get(tree))
    distributed.align()  # Gloo gives a new device group only 30 s.
    return jax.tree.map(
        lambda x: np.asarray(multihost_utils.process_allgather(x,
                                                               tiled=True)),
        tree)

  def unpad(self, tree):
    """Slices the padded level axis back to the real levels (on host)."""
    return jax.tree.map(lambda x: x[:self.num_levels], self.gather(tree))

  def local_values(self, tree) -> dict:
    """{level: its slice of `tree` (numpy)} for `owned_levels`, no
    communication; each device's shard is fetched once."""
    owned = set(self.owned_levels)
    leaves, treedef = jax.tree.flatten(tree)
    rows = []  # Per leaf: {level: row}.
    for x in leaves:
      found = {}
      for s in x.addressable_shards:
        start = s.index[0].start or 0
        stop = x.shape[0] if s.index[0].stop is None else s.index[0].stop
        wanted = [l for l in range(start, stop) if l in owned]
        if wanted:
          data = np.asarray(s.data)
          found.update({l: data[l - start] for l in wanted})
      missing = owned - set(found)
      if missing:
        raise ValueError(f'Levels {sorted(missing)} are not on this process.')
      rows.append(found)
    return {l: jax.tree.unflatten(treedef, [r[l] for r in rows])
            for l in self.owned_levels}

  def replicate(self, tree):
    if not self.multiprocess:
      return jax.device_put(tree, self.replicated)
    return jax.tree.map(
        lambda x: jax.make_array_from_callback(
            np.shape(x), self.replicated,
            lambda idx, x=np.asarray(x): x[idx]), tree)

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
