"""Helpers for rtc's tests: synthetic datasets and tiny configurations."""

import os

import numpy as np

from rtc.common import envs

# The smallest packaged level (5 polygons, 2 circles): fast to compile and run.
TINY_LEVEL = 's/h0_weak_thrust.json'
TINY_OBS_DIM = 140
ACTION_DIM = 6


def write_dataset(path: str, t_len: int = 64, num_envs: int = 4,
                  obs_dim: int = TINY_OBS_DIM, action_dim: int = ACTION_DIM,
                  seed: int = 0, episode: int = 20) -> None:
  """A learnable synthetic dataset in the DESIGN §10 layout.

  Actions are a fixed smooth function of the observation, so behaviour
  cloning can fit them; episodes end every `episode` steps.
  """
  rng = np.random.default_rng(seed)
  obs = rng.normal(size=(t_len, num_envs, obs_dim)).astype(np.float32)
  proj = rng.normal(size=(obs_dim, action_dim)) / np.sqrt(obs_dim)
  action = np.tanh(obs @ proj).astype(np.float32)
  done = (np.arange(t_len)[:, None] % episode == episode - 1) & np.ones(
      (1, num_envs), bool)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path, obs=obs, action=action, done=done, solved=done,
           return_=done.astype(np.float32), length=np.full(done.shape, 5))


def make_expert_run(root: str, level_ids=(TINY_LEVEL,), **kwargs) -> str:
  """An expert-run directory holding data/<level_name>.npz per level."""
  for i, level_id in enumerate(level_ids):
    write_dataset(os.path.join(root, 'data',
                               envs.level_name(level_id) + '.npz'),
                  seed=i, **kwargs)
  return root


def shrink_model(model):
  """Makes a model ConfigDict tiny (for fast tests)."""
  model.channel_dim = 32
  model.channel_hidden_dim = 64
  model.token_hidden_dim = 16
  model.num_layers = 2
  return model


def tiny_bc_config(c, run_path, logdir, **overrides):
  """A behaviour-cloning config (configs/flow.py or dd.py) made tiny."""
  shrink_model(c.model)
  c.run_path = run_path
  c.logdir = logdir
  c.run_name = 'run'
  c.batch_size = 32
  c.num_epochs = 2
  c.warmup_steps = 5
  c.learning_rate = 3e-3
  c.log_every = 4
  for k, v in overrides.items():
    setattr(c, k, v)
  return c
