"""Plumbing shared by the sibling policies (rtc.flow.model, rtc.dd.model).

Each policy is a Haiku transform net(obs [B,O], chunk [B,H,A], level) over
the shared backbone, where `level` is the flow time or the corruption level,
one for the batch (a scalar: sampling), per example [B] or per token [B,H].
This base class holds the transform and what does not depend on the policy
kind: sizes, `init`, `param_shapes` and the application.
"""

from typing import Callable

import haiku as hk
import jax
import jax.numpy as jnp


class ChunkPolicy:
  """Base of FlowPolicy and DiscreteDiffusionPolicy."""

  kind = ''
  chunk_dtype = jnp.float32  # dtype of the chunk the network reads.

  def __init__(self, model_config, obs_dim: int, action_dim: int,
               net: Callable):
    self.config = model_config
    self.obs_dim = obs_dim
    self.action_dim = action_dim
    self.horizon = model_config.action_chunk_size
    self._net = hk.without_apply_rng(hk.transform(net))

  def init(self, rng: jax.Array):
    obs = jnp.zeros((1, self.obs_dim), jnp.float32)
    x = jnp.zeros((1, self.horizon, self.action_dim), self.chunk_dtype)
    return self._net.init(rng, obs, x, jnp.zeros((1,), jnp.float32))

  def param_shapes(self):
    return jax.eval_shape(self.init, jax.random.key(0))

  def _apply(self, params, obs, x, level, **kwargs):
    """The network; `level` a scalar, [B] or per-token [B, H]; `kwargs` go
    to the policy's net."""
    level = jnp.asarray(level, jnp.float32)  # A scalar stays one: the
    # backbone then computes the conditioning once for the batch.
    return self._net.apply(params, obs, x.astype(self.chunk_dtype), level,
                           **kwargs)
