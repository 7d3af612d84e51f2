"""The policy contract: what every policy family implements, and what it shares.

A policy family (flow matching: rtc.flow.model, discrete diffusion:
rtc.dd.model, or a new one) subclasses `ChunkPolicy` and is registered in
rtc.common.core.registry; training (rtc.common.bc.train), the rollout and sweep
(rtc.common.env.rollout, rtc.common.bc.sweep) and BID (rtc.common.core.bid) only call the
methods below, so they never branch on the family (DESIGN §2).

Shape letters:

* B: batch (examples, or parallel episodes in a rollout);
* H: chunk size, `model.action_chunk_size` (`self.chunk_size`);
* A: action dimensions (`self.action_dim`);
* O: observation dimensions, the plain observation (`self.obs_dim`);
* K: bins per action dimension (discrete diffusion only).

Names (each means one thing in the code):

* `chunk_size`: H, the actions one call returns;
* `execute_horizon` (s): how many of them run before the next chunk; d the
  inference delay; `prefix_attention_horizon` = H - s, the positions the
  prefix weights may reach (rtc.common.core.prefix);
* `noise_level`: where a sample is between clean and noise, the flow time
  or the corruption level; `level` alone is a Kinetix level;
* `num_steps`: sampling steps per chunk (the option users type is still
  `num_flow_steps`, for flow and DD alike).

A policy is a Haiku transform net(obs [B, O], chunk [B, H, A], noise_level)
over the shared backbone, one noise level for the batch (a scalar:
sampling), per example [B] or per token [B, H].
Every method is pure and jit-able with `params` first; `inference_delay`
(d) and `prefix_attention_horizon` (H - s, s the execution horizon) may be
traced values. Chunks are continuous, [B, H, A] float32.

Abstract (each family's algorithm):

* `action(params, rng, obs, num_steps, noise=None)` -> chunk [B, H, A];
* `realtime_action(params, rng, obs, num_steps, prev_chunk [B, H, A],
  inference_delay, prefix_attention_horizon, prefix_attention_schedule,
  max_guidance_weight, noise=None)` -> chunk [B, H, A] (real-time chunking);
* `training_time_action(params, rng, obs, num_steps, prev_chunk,
  inference_delay, noise=None)` -> chunk [B, H, A] whose first d positions
  are `prev_chunk`'s (models trained with `model.simulated_delay`);
* `loss_and_metrics(params, rng, obs [B, O], action [B, H, A])` -> (scalar
  loss, {name: scalar}) (call `check_action` first).

Shared (implemented here once): `init`, `param_shapes`, `bid_action` (BID
with `action` as the sampler), `loss`, `check_action` and `maker`, which
turns a policy class and its config class into the family's
`make_policy(model options, obs_dim, action_dim)`.
"""

import abc
import functools
from typing import Callable, Optional

import haiku as hk
import jax
import jax.numpy as jnp

from rtc.common.core import bid


class ChunkPolicy(abc.ABC):
  """Base of every policy family (FlowPolicy, DiscreteDiffusionPolicy)."""

  kind = ''
  chunk_dtype = jnp.float32  # dtype of the chunk the network reads.

  def __init__(self, model_config, obs_dim: int, action_dim: int,
               net: Callable):
    self.config = model_config
    self.obs_dim = obs_dim
    self.action_dim = action_dim
    self.chunk_size = model_config.action_chunk_size
    self._net = hk.without_apply_rng(hk.transform(net))

  def init(self, rng: jax.Array):
    obs = jnp.zeros((1, self.obs_dim), jnp.float32)
    x = jnp.zeros((1, self.chunk_size, self.action_dim), self.chunk_dtype)
    return self._net.init(rng, obs, x, jnp.zeros((1,), jnp.float32))

  def param_shapes(self):
    return jax.eval_shape(self.init, jax.random.key(0))

  def program_key(self) -> tuple:
    """What a program traced from this policy's methods depends on besides
    its arguments (hashable): policies with equal keys trace equal programs,
    so a caller may reuse one (rtc.common.bc.sweep's evaluators)."""
    return (type(self), self.config, self.obs_dim, self.action_dim,
            self.trace_flags())

  def trace_flags(self) -> tuple:
    """Process-wide switches read while tracing (none here)."""
    return ()

  def _apply(self, params, obs, x, noise_level, **kwargs):
    """The network; `noise_level` a scalar, [B] or per-token [B, H];
    `kwargs` go to the policy's net."""
    # A scalar stays one: the backbone then computes the conditioning once
    # for the batch.
    noise_level = jnp.asarray(noise_level, jnp.float32)
    return self._net.apply(params, obs, x.astype(self.chunk_dtype),
                           noise_level, **kwargs)

  # -- the family's algorithm --------------------------------------------------

  @abc.abstractmethod
  def action(self, params, rng, obs, num_steps: int, noise=None):
    """A chunk [B, H, A] for observations [B, O], from scratch."""

  @abc.abstractmethod
  def realtime_action(self, params, rng, obs, num_steps: int, prev_chunk,
                      inference_delay, prefix_attention_horizon,
                      prefix_attention_schedule: str = 'exp',
                      max_guidance_weight: float = 5.0, noise=None):
    """A chunk [B, H, A] continuing `prev_chunk` [B, H, A] (RTC)."""

  @abc.abstractmethod
  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """A chunk [B, H, A] whose first `inference_delay` positions are
    `prev_chunk`'s, for models trained with `model.simulated_delay`."""

  @abc.abstractmethod
  def loss_and_metrics(self, params, rng, obs, action):
    """(scalar loss, {metric name: scalar}) on obs [B, O], action
    [B, H, A]."""

  # -- shared ------------------------------------------------------------------

  def check_action(self, obs, action) -> None:
    """Raises unless `action` is [B, H, A] for `obs` [B, O]."""
    expected = (obs.shape[0], self.chunk_size, self.action_dim)
    if action.shape != expected:
      raise ValueError(f'action must have shape {expected}, got '
                       f'{action.shape}.')

  def loss(self, params, rng, obs, action):
    """The scalar training loss."""
    return self.loss_and_metrics(params, rng, obs, action)[0]

  def bid_action(self, params, rng, obs, num_steps: int, prev_chunk,
                 inference_delay, prefix_attention_horizon, n_samples: int,
                 weak_params=None, bid_k: Optional[int] = None):
    """BID over `n_samples` chunks from `action` (weak policy: `weak_params`
    + `bid_k`); a chunk [B, H, A]."""
    weak = None
    if weak_params is not None:
      weak = functools.partial(self._sampler, weak_params, num_steps)
    return bid.bid_action(
        functools.partial(self._sampler, params, num_steps), rng, obs,
        prev_chunk, inference_delay, prefix_attention_horizon, n_samples,
        weak, bid_k)

  def _sampler(self, params, num_steps, rng, obs):
    return self.action(params, rng, obs, num_steps)


def maker(policy_class: type, config_class: type,
          upgrade: Optional[Callable[[dict], dict]] = None) -> Callable:
  """The family's make_policy(model, obs_dim, action_dim): a `policy_class`
  from model options (a dict or ConfigDict) checked by `config_class`;
  `upgrade` maps older runs' options (a dict) to the current ones first."""

  def make_policy(model, obs_dim: int, action_dim: int):
    model = model.to_dict() if hasattr(model, 'to_dict') else dict(model)
    if upgrade is not None:
      model = upgrade(model)
    return policy_class(config_class(**model), obs_dim, action_dim)

  make_policy.__doc__ = (f'A {policy_class.__name__} from model options (a '
                         'dict or ConfigDict).')
  return make_policy
