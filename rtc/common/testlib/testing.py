"""Helpers for rtc's tests: synthetic datasets and tiny configurations."""

import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax

# The smallest packaged level (5 polygons, 2 circles): fast to compile and run.
TINY_LEVEL = 's/h0_weak_thrust.json'
TINY_OBS_DIM = 140
ACTION_DIM = 6
# The backbone sizes of the tests' tiny models (the one place they are set).
TINY_BACKBONE = dict(channel_dim=32, channel_hidden_dim=64,
                     token_hidden_dim=16, num_layers=2)


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
  from rtc.common.env import envs  # pylint: disable=g-import-not-at-top
  for i, level_id in enumerate(level_ids):
    write_dataset(os.path.join(root, 'data',
                               envs.level_name(level_id) + '.npz'),
                  seed=i, **kwargs)
  return root


def temp_expert_run(test_class) -> tuple[str, str]:
  """A temporary directory, removed after `test_class`'s tests, holding an
  expert run at <root>/expert (`make_expert_run`): (root, expert run)."""
  root = tempfile.mkdtemp()
  test_class.addClassCleanup(shutil.rmtree, root, ignore_errors=True)
  return root, make_expert_run(os.path.join(root, 'expert'))


def shrink_model(model):
  """Makes a model ConfigDict tiny (for fast tests)."""
  for k, v in TINY_BACKBONE.items():
    setattr(model, k, v)
  return model


def tiny_bc_config(c, run_path, logdir, shrink=True, **overrides):
  """A behaviour-cloning config made tiny: short training and, with
  `shrink`, the backbone's tiny sizes (a family without the backbone passes
  shrink=False). `overrides` set any top-level option."""
  if shrink:
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


def perturbed_params(policy, seed: int = 0, scale: float = 0.1,
                     key_offset: int = 100):
  """Init params with every leaf moved by scale * N(0, 1) (drawn with key
  seed + key_offset): the zero-initialised adaLN layers become non-zero."""
  params = policy.init(jax.random.key(seed))
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed + key_offset), len(leaves))
  return jax.tree.unflatten(tree, [
      x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def synthetic_chunks(seed: int, batch: int, obs_dim: int, chunk_size: int,
                     action_dim: int):
  """A deterministic, learnable observation -> chunk mapping: (obs [B, O],
  chunks [B, H, A] = tanh of a random projection of obs)."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  obs = jax.random.normal(k1, (batch, obs_dim))
  proj = jax.random.normal(
      k2, (obs_dim, chunk_size * action_dim)) / np.sqrt(obs_dim)
  return obs, jnp.tanh(obs @ proj).reshape(batch, chunk_size, action_dim)


def fit(policy, obs, target, num_steps: int, learning_rate: float = 3e-3):
  """Adam on policy.loss_and_metrics from policy.init(key 0), step i drawing
  key i. Returns (params, losses per step, the last step's metrics)."""
  params = policy.init(jax.random.key(0))
  opt = optax.adam(learning_rate)
  state = opt.init(params)

  @jax.jit
  def step(params, state, key):
    (loss, metrics), g = jax.value_and_grad(
        policy.loss_and_metrics, has_aux=True)(params, key, obs, target)
    updates, state = opt.update(g, state)
    return optax.apply_updates(params, updates), state, loss, metrics

  losses, metrics = [], {}
  for i in range(num_steps):
    params, state, loss, metrics = step(params, state, jax.random.key(i))
    losses.append(float(loss))
  return params, losses, metrics
