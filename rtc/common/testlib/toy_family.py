"""A toy third policy family, for tests of the family-agnostic code.

The toy family regresses the chunk on the observation with a one-layer
MLP (no noise, no steps): real-time chunking blends the previous chunk in
with the prefix weights. //rtc:family_test registers it under the
kind 'toy' and trains and evaluates it through the same code as flow and
DD; //rtc/common/bc:train_test runs the training loop's checks on it.
"""

import dataclasses
from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp
from ml_collections import config_dict

from configs import common as common_config
from rtc.common.core import policy as policy_lib
from rtc.common.core import prefix
from rtc.common.testlib import testing


@dataclasses.dataclass(frozen=True)
class ToyConfig:
  action_chunk_size: int = 8
  hidden_dim: int = 16
  simulated_delay: Optional[int] = None


class ToyPolicy(policy_lib.ChunkPolicy):
  """chunk = MLP(obs), a deterministic regression of the chunk."""

  kind = 'toy'

  def __init__(self, model_config: ToyConfig, obs_dim: int, action_dim: int):
    chunk_size = model_config.action_chunk_size

    def net(obs, x, level):
      del x, level  # The toy conditions on the observation only.
      h = jax.nn.tanh(hk.Linear(model_config.hidden_dim, name='toy_in')(obs))
      out = hk.Linear(chunk_size * action_dim, name='toy_out')(h)
      return out.reshape(obs.shape[0], chunk_size, action_dim)

    super().__init__(model_config, obs_dim, action_dim, net)

  def _mean(self, params, obs):
    x = jnp.zeros((obs.shape[0], self.chunk_size, self.action_dim))
    return self._apply(params, obs, x, 0.0)

  def action(self, params, rng, obs, num_steps: int, noise=None):
    del rng, num_steps, noise
    return self._mean(params, obs)

  def realtime_action(self, params, rng, obs, num_steps: int, prev_chunk,
                      inference_delay, prefix_attention_horizon,
                      prefix_attention_schedule: str = 'exp',
                      max_guidance_weight: float = 5.0, noise=None):
    del rng, num_steps, max_guidance_weight, noise
    w = prefix.prefix_weights(inference_delay, prefix_attention_horizon,
                              self.chunk_size, prefix_attention_schedule)
    w = w[None, :, None]
    return w * prev_chunk + (1 - w) * self._mean(params, obs)

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    del rng, num_steps, noise
    clean = (jnp.arange(self.chunk_size) < inference_delay)[None, :, None]
    return jnp.where(clean, prev_chunk, self._mean(params, obs))

  def loss_and_metrics(self, params, rng, obs, action):
    del rng
    self.check_action(obs, action)
    loss = jnp.mean(jnp.square(self._mean(params, obs) - action))
    return loss, {'mse': loss}


def toy_model():
  return config_dict.ConfigDict(dataclasses.asdict(ToyConfig()))


make_toy_policy = policy_lib.maker(ToyPolicy, ToyConfig)
make_policy = make_toy_policy

# What a family module declares for rtc.common.core.registry (the toy is
# registered as a module-like namespace of these; see family_test).
LABEL = 'toy regression'
QUICKSTART = {'model': {}, 'test_model': {}, 'train_seconds': 5,
              'eval_seconds': 5}


def get_train_config(preset: str = ''):
  """The toy's behaviour-cloning configuration (no presets)."""
  del preset
  return common_config.bc_train('logs-toy', toy_model())


def get_eval_config(preset: str = ''):
  """The toy's evaluation sweep configuration."""
  del preset
  return common_config.sweep(num_evals=16, max_guidance_weight=1.0,
                             model_config=toy_model())


def toy_train_config(run_path: str, logdir: str, **overrides):
  """Behaviour cloning of the toy family on `run_path`'s data: one epoch of
  8 steps, logged every 4."""
  settings = dict(num_epochs=1, warmup_steps=1, learning_rate=1e-2)
  settings.update(overrides)
  return testing.tiny_bc_config(common_config.bc_train(logdir, toy_model()),
                                run_path, logdir, shrink=False, **settings)
