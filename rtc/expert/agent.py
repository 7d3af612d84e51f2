"""The PPO expert: actor-critic MLPs and a squashed-normal action distribution.

Network (DESIGN §10, "PPO expert"): separate
actor and critic MLPs, each 2 hidden layers of 256 units with tanh,
orthogonal initialisation with gains sqrt(2), sqrt(2) and then 0.01 for the
actor head and 1 for the critic head (biases zero), and a learned log-std
(initialised to 0). Haiku names: root module `agent` with Linears
`actor_0..2`, `critic_0..2` and the parameter `agent/logstd`, the names that
rtc.common.bc.checkpoints gives the earlier implementation's pickles, so those
load unchanged.

Observation: the expert's own (rtc.common.env.envs.BatchedEnv with
`obs_history=4, include_prev_action=True`): the last 4 plain observations,
oldest first, then the previous action.

Action distribution (`SquashedNormal`): u ~ N(mean, std) with the actor's
output clipped to +-5 as the mean and std = exp(clip(logstd, -10, 2)); the
action is tanh(u) on the motor dims (the first `num_motor` dims, [-1, 1]) and
sigmoid(u) on the thruster dims ([0, 1]). Samples are clipped to
+-0.99999 as in the earlier implementation; on the sigmoid dims, whose values
are never negative, the lower end is clipped to 1e-5 as well (the earlier
implementation left it open, where an underflowing sigmoid gives a log-density
of +inf), so every action that `sample` returns or `log_prob` sees lies at
most 11.5 (logit) or 6.1 (atanh) from the origin in pre-squash space.

Log-densities use the change of variables with the inverse squash:

  tanh dims:    log p(y) = log N(atanh(y)) - log(1 - y^2)
  sigmoid dims: log p(y) = log N(logit(y)) - log(y (1 - y))

with atanh(y) = (log1p(y) - log1p(-y)) / 2, logit(y) = log(y) - log1p(-y) and
log(1 - y^2) = log1p(y) + log1p(-y), which are exact and finite in float32 for
every clipped action (no tanh/sigmoid of large arguments is inverted, so
there is no NaN at the boundaries). `log_prob` clips its input first, so
actions at exactly +-1 or 0 (e.g. from data) are scored at the clip boundary.
"""

from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

ROOT = 'agent'
ACTION_LIMIT = 0.99999  # |tanh action| <= this; sigmoid action in [1e-5, this].
SIGMOID_FLOOR = 1.0 - ACTION_LIMIT
MEAN_LIMIT = 5.0
LOGSTD_MIN, LOGSTD_MAX = -10.0, 2.0
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def motor_mask(action_dim: int, num_motor: int) -> jax.Array:
  """[A] bool: True on the tanh (motor) dims, False on the sigmoid dims."""
  if not 0 <= num_motor <= action_dim:
    raise ValueError(f'num_motor={num_motor} must lie in [0, {action_dim}].')
  return jnp.arange(action_dim) < num_motor


class SquashedNormal(NamedTuple):
  """Normal in pre-squash space; tanh on motor dims, sigmoid elsewhere."""
  mean: jax.Array  # [..., A], already clipped to +-MEAN_LIMIT.
  std: jax.Array  # [..., A] (broadcastable).
  is_tanh: jax.Array  # [A] bool.

  def squash(self, u):
    return jnp.where(self.is_tanh, jnp.tanh(u), jax.nn.sigmoid(u))

  def clip(self, y):
    low = jnp.where(self.is_tanh, -ACTION_LIMIT, SIGMOID_FLOOR)
    return jnp.clip(y, low, ACTION_LIMIT)

  def unsquash(self, y):
    """Pre-squash value and log|dy/du| of (clipped) actions y."""
    y = self.clip(y)
    # Safe inputs for the branch that a dim does not use (no NaN gradients).
    yt = jnp.where(self.is_tanh, y, 0.0)
    ys = jnp.where(self.is_tanh, 0.5, y)
    lp, lm = jnp.log1p(yt), jnp.log1p(-yt)
    u_tanh, logdet_tanh = 0.5 * (lp - lm), lp + lm
    log_y, log_1my = jnp.log(ys), jnp.log1p(-ys)
    u_sig, logdet_sig = log_y - log_1my, log_y + log_1my
    return (jnp.where(self.is_tanh, u_tanh, u_sig),
            jnp.where(self.is_tanh, logdet_tanh, logdet_sig))

  def log_prob(self, y):
    """Sum over action dims of log p(y); finite for every y."""
    u, logdet = self.unsquash(y)
    z = (u - self.mean) / self.std
    normal = -0.5 * z**2 - jnp.log(self.std) - _LOG_SQRT_2PI
    return jnp.sum(normal - logdet, axis=-1)

  def sample(self, key):
    """A clipped sample and its log-probability."""
    eps = jax.random.normal(key, jnp.shape(self.mean))
    y = self.clip(self.squash(self.mean + self.std * eps))
    return y, self.log_prob(y)

  def mode(self):
    """The squashed mean (the deterministic action), clipped."""
    return self.clip(self.squash(self.mean))

  def normal_entropy(self):
    """Entropy of the pre-squash Gaussian (a diagnostic), summed over dims."""
    std = jnp.broadcast_to(self.std, jnp.shape(self.mean))
    return jnp.sum(jnp.log(std) + 0.5 + _LOG_SQRT_2PI, axis=-1)


def _mlp(prefix, x, hidden_dim, num_hidden, out_dim, head_gain):
  """tanh MLP with Linears `<prefix>_0..num_hidden` (a function, not a
  method, so the Linears are named directly under the calling module)."""
  for i in range(num_hidden):
    x = jnp.tanh(hk.Linear(
        hidden_dim, w_init=hk.initializers.Orthogonal(np.sqrt(2.0)),
        b_init=jnp.zeros, name=f'{prefix}_{i}')(x))
  return hk.Linear(out_dim, w_init=hk.initializers.Orthogonal(head_gain),
                   b_init=jnp.zeros, name=f'{prefix}_{num_hidden}')(x)


class Agent(hk.Module):
  """Actor and critic MLPs plus a state-independent log-std."""

  def __init__(self, action_dim: int, hidden_dim: int = 256,
               num_hidden: int = 2, name: str = ROOT):
    super().__init__(name=name)
    self.action_dim = action_dim
    self.hidden_dim = hidden_dim
    self.num_hidden = num_hidden

  def __call__(self, obs, with_critic: bool = True):
    """Returns (raw actor output [..., A], logstd [A], value [...] or None)."""
    out = _mlp('actor', obs, self.hidden_dim, self.num_hidden,
               self.action_dim, 0.01)
    logstd = hk.get_parameter('logstd', [self.action_dim], init=jnp.zeros)
    value = None
    if with_critic:
      value = _mlp('critic', obs, self.hidden_dim, self.num_hidden, 1,
                   1.0)[..., 0]
    return out, logstd, value


class ExpertAgent:
  """Pure functions of the agent's parameters (jit- and vmap-friendly)."""

  def __init__(self, obs_dim: int, action_dim: int, num_motor: int,
               hidden_dim: int = 256):
    self.obs_dim = obs_dim
    self.action_dim = action_dim
    self.num_motor = num_motor
    self.hidden_dim = hidden_dim
    self.is_tanh = motor_mask(action_dim, num_motor)

    def net(obs, with_critic=True):
      return Agent(action_dim, hidden_dim)(obs, with_critic)

    self._net = hk.without_apply_rng(hk.transform(net))

  def init(self, rng: jax.Array):
    return self._net.init(rng, jnp.zeros((1, self.obs_dim), jnp.float32))

  def param_shapes(self):
    return jax.eval_shape(self.init, jax.random.key(0))

  def distribution(self, out, logstd) -> SquashedNormal:
    mean = jnp.clip(out, -MEAN_LIMIT, MEAN_LIMIT)
    std = jnp.exp(jnp.clip(logstd, LOGSTD_MIN, LOGSTD_MAX))
    return SquashedNormal(mean, std, self.is_tanh)

  def apply(self, params, obs, mean_noise=None):
    """(SquashedNormal, value) at `obs` [..., O].

    `mean_noise` (same shape as the mean) is added to the clipped mean: RPO's
    exploration noise in the PPO loss.
    """
    out, logstd, value = self._net.apply(params, obs, True)
    dist = self.distribution(out, logstd)
    if mean_noise is not None:
      dist = dist._replace(mean=dist.mean + mean_noise)
    return dist, value

  def policy(self, params, obs) -> SquashedNormal:
    """The action distribution alone (the critic is not computed)."""
    out, logstd, _ = self._net.apply(params, obs, False)
    return self.distribution(out, logstd)


def agent_for_params(params, num_motor: int) -> ExpertAgent:
  """An ExpertAgent sized from a parameter tree (rtc or converted reference)."""
  w0 = params[f'{ROOT}/actor_0']['w']
  head = params[f'{ROOT}/actor_2']['w']
  return ExpertAgent(int(w0.shape[0]), int(head.shape[1]), num_motor,
                     int(w0.shape[1]))
