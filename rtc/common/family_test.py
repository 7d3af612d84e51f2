"""A third policy family, defined here, goes through training and the sweep.

The toy family regresses the chunk on the observation with a one-layer
MLP (no noise, no steps): real-time chunking blends the previous chunk in
with the prefix weights. It is registered under the kind 'toy' and then
trained for one epoch and evaluated at one sweep point through the same
code as flow and DD (rtc.common.train, rtc.common.evaluate), which find it
in rtc.common.registry; no other file knows of it.
"""

import csv
import dataclasses
import json
import os
import tempfile
import types
from typing import Optional

from absl.testing import absltest
import haiku as hk
import jax
import jax.numpy as jnp
from ml_collections import config_dict

from configs import common as common_config
from rtc.common import cache
from rtc.common import checkpoints
from rtc.common import evaluate
from rtc.common import policy as policy_lib
from rtc.common import prefix
from rtc.common import registry
from rtc.common import summary
from rtc.common import testing
from rtc.common import train


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


def toy_train_config(run_path: str, logdir: str, **overrides):
  """Behaviour cloning of the toy family on `run_path`'s data: one epoch of
  8 steps, logged every 4."""
  c = common_config.bc_train(logdir, toy_model())
  c.run_path = run_path
  c.run_name = 'run'
  c.batch_size = 32
  c.num_epochs = 1
  c.warmup_steps = 1
  c.learning_rate = 1e-2
  c.log_every = 4
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


class ThirdFamilyTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    registry.register(
        'toy', types.SimpleNamespace(make_policy=make_toy_policy))
    cls.root = tempfile.mkdtemp()

  @classmethod
  def tearDownClass(cls):
    registry.unregister('toy')
    super().tearDownClass()

  def test_trains_one_epoch_and_runs_a_sweep_point(self):
    expert = testing.make_expert_run(os.path.join(self.root, 'expert'))
    c = toy_train_config(expert, os.path.join(self.root, 'logs-toy'))
    run_dir = train.train_and_evaluate(c, registry.make_policy('toy'), 'toy',
                                       log=lambda _: None)

    self.assertEqual(checkpoints.epoch_dirs(run_dir), [0])
    with open(os.path.join(run_dir, 'config.json')) as f:
      run_config = json.load(f)
    self.assertEqual(run_config['kind'], 'toy')
    self.assertEqual(run_config['model'], dataclasses.asdict(ToyConfig()))
    params = checkpoints.load_params(checkpoints.policy_path(
        run_dir, 0, 'worlds_s_h0_weak_thrust'))
    self.assertEqual(sorted(params), ['toy_in', 'toy_out'])
    mse = [v for _, v in
           summary.read_scalars(os.path.join(run_dir, 'tb'))['train/mse']]
    self.assertLen(mse, 2)  # 8 steps, logged every 4.
    self.assertLess(mse[-1], mse[0])

    e = common_config.sweep(num_evals=4, max_guidance_weight=1.0,
                            model_config=toy_model())
    e.num_flow_steps = 1
    e.delays = '1'
    e.execute_horizons = '1'
    e.methods = 'realtime'
    path = evaluate.evaluate(e, run_dir, os.path.join(self.root, 'eval'),
                             None, 'toy', log=lambda _: None)
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertLen(rows, 1)
    row = rows[0]
    self.assertEqual((row['method'], row['delay'], row['execute_horizon']),
                     ('realtime', '1', '1'))
    self.assertBetween(float(row['returned_episode_solved']), 0.0, 1.0)
    self.assertBetween(float(row['returned_episode_lengths']), 1.0, 256.0)


if __name__ == '__main__':
  absltest.main()
