"""PPO with RPO exploration for one (seed, level): pure, jit- and vmap-able.

One `update` (the earlier implementation's semantics):

1. Rollout of `num_steps` steps of `num_envs` environments with the
   squashed-normal policy (rtc.expert.agent): sample, clip, log-probability
   of the clipped sample. The environment (rtc.common.env.envs.BatchedEnv) adds
   its Gaussian action noise (0.1) and resets finished episodes.
2. A shaped reward for learning (below); solve rates, returns and lengths
   are always the task's.
3. GAE: delta_t = r_t + gamma V(s_t+1) (1 - done_t) - V(s_t),
   A_t = delta_t + gamma lambda (1 - done_t) A_t+1, where done_t is the done
   of the step taken at t (so s_t+1 after a done is the next episode's start
   and is not bootstrapped; time-outs count as terminal, as in kinetix).
   Returns = A + V.
4. `update_epochs` epochs over the rollout, each shuffled into
   `num_minibatches` minibatches. Loss = clipped policy gradient with the
   minibatch's advantages normalised + `vf_coef` * 0.5 max(unclipped,
   clipped) squared value error - `ent_coef` * entropy of the pre-squash
   Gaussian (0 by default). RPO: when the loss re-scores the actions, the
   policy mean is perturbed by U(-rpo_alpha, rpo_alpha) noise.
5. Optimiser: clip_by_global_norm then Adam (eps 1e-5); the learning rate is
   part of the optimiser state (optax.inject_hyperparams), so every learning
   rate shares one compiled update.

Shaping (`shaping`), from kinetix's goal distance `info['distance']`:

* `distance` (the earlier implementation's penalty): with
  p = distance / 6 / max_timesteps, r' = r - (0 if r > 0 else p), and when
  an episode ends without success r' -= (max_timesteps - t) p, t the
  episode's length: a failure or time-out is charged the penalty for every
  step it did not play, so ending an episode early never pays.
* `kinetix` (kinetix 3's own `dense_reward_scale` shaping, scale 0.1):
  r' = r + 0.1 (previous distance - distance), zero on an episode's first
  step.
* `none`: the task reward (+1 solved, -1 failed, 0 otherwise).

`kinetix` is the default: it learned faster on every level measured
(2-core CPU; 64 envs x 128 steps per update, 4 epochs x 8 minibatches,
hidden 64, the paper's other settings; 3 seeds each; environment steps per
seed until the solve rate of a 2-update interval first reached 0.5 / 0.9):

  level                          distance                kinetix
  s/h0_weak_thrust   to 0.5     197k 180k 180k          164k 164k 147k
                     to 0.9     229k 213k 213k          213k 213k 180k
  m/h18_thrust_right_very_easy
                     to 0.5     164k 197k 279k          115k 115k 131k
                     to 0.9     180k 213k 295k          115k 131k 131k
  s/h3_point_the_thruster       1 of 3 seeds learns     1 of 3 seeds learns
                     to 0.5     377k                    82k

All of those runs ended at solve rate 1.0 except the h3 seeds that never
learned (0.0, every episode timing out); the distance penalty also made the
successful h3 seed 4.6x slower.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rtc.common.base import validate
from rtc.common.env import envs
from rtc.expert import agent as agent_lib

SHAPINGS = ('distance', 'kinetix', 'none')
DEFAULT_SHAPING = 'kinetix'  # Measured: see the module docstring.
KINETIX_DENSE_SCALE = 0.1
DISTANCE_SCALE = 6.0


@dataclasses.dataclass(frozen=True)
class Settings:
  """PPO hyper-parameters (config fields of the same names)."""
  num_envs: int = 256
  num_steps: int = 256
  num_minibatches: int = 8
  update_epochs: int = 4
  gamma: float = 0.995
  gae_lambda: float = 0.9
  clip_eps: float = 0.2
  vf_coef: float = 0.5
  ent_coef: float = 0.0
  rpo_alpha: float = 0.3
  max_grad_norm: float = 1.0
  shaping: str = DEFAULT_SHAPING

  @classmethod
  def from_config(cls, config) -> 'Settings':
    kwargs = {f.name: type(f.default)(config[f.name])
              for f in dataclasses.fields(cls)}
    settings = cls(**kwargs)
    settings.validate()
    return settings

  def validate(self) -> None:
    if self.shaping not in SHAPINGS:
      raise ValueError(f'--config.shaping={self.shaping!r} is not one of '
                       f'{", ".join(SHAPINGS)}.')
    for name in ('num_envs', 'num_steps', 'num_minibatches',
                 'update_epochs'):  # The rules of rtc.common.base.validate.
      validate.check_value(name, getattr(self, name), validate.EXPERT[name])
    if self.batch_size % self.num_minibatches:
      raise ValueError(
          f'num_envs * num_steps = {self.batch_size} is not divisible by '
          f'--config.num_minibatches={self.num_minibatches}.')

  @property
  def batch_size(self) -> int:
    return self.num_envs * self.num_steps


def shaped_reward(shaping: str, reward, done, distance, prev_distance,
                  length, max_timesteps):
  """(learning reward, distance to remember for the next step).

  All arrays are [N]. `length` is the episode's length including this step;
  `prev_distance` is -1 at an episode's start (as in kinetix).
  """
  next_prev = jnp.where(done, -1.0, distance)
  if shaping == 'none':
    return reward, next_prev
  if shaping == 'kinetix':
    delta = (prev_distance - distance) * KINETIX_DENSE_SCALE
    delta = jnp.where(prev_distance < 0, 0.0, jnp.nan_to_num(
        delta, nan=0.0, posinf=0.0, neginf=0.0))
    return reward + delta, next_prev
  if shaping == 'distance':
    penalty = jnp.where(reward > 0, 0.0,
                        distance / DISTANCE_SCALE / max_timesteps)
    remaining = jnp.maximum(max_timesteps - length, 0).astype(jnp.float32)
    shaped = reward - penalty - jnp.where(done, remaining * penalty, 0.0)
    return shaped, next_prev
  raise ValueError(f'Unknown shaping {shaping!r}; use one of {SHAPINGS}.')


def gae(rewards, values, dones, last_value, gamma: float, lam: float):
  """Advantages [S, ...] from rewards, values, dones [S, ...] and V(s_S)."""
  def step(carry, x):
    adv_next, value_next = carry
    reward, value, done = x
    not_done = 1.0 - done.astype(jnp.float32)
    delta = reward + gamma * value_next * not_done - value
    adv = delta + gamma * lam * not_done * adv_next
    return (adv, value), adv

  _, adv = jax.lax.scan(step, (jnp.zeros_like(last_value), last_value),
                        (rewards, values, dones), reverse=True)
  return adv


def make_optimizer(settings: Settings) -> optax.GradientTransformation:
  return optax.chain(
      optax.clip_by_global_norm(settings.max_grad_norm),
      optax.inject_hyperparams(optax.adam)(learning_rate=0.0, eps=1e-5))


class Runner(NamedTuple):
  """Everything one (seed, level) carries from update to update."""
  params: dict
  opt_state: tuple
  env_state: envs.EnvState
  obs: jax.Array  # [N, O'] the expert observation.
  prev_distance: jax.Array  # [N]
  key: jax.Array  # uint32 key data.


class Transition(NamedTuple):
  obs: jax.Array
  action: jax.Array
  log_prob: jax.Array
  value: jax.Array
  reward: jax.Array
  done: jax.Array


STAT_KEYS = ('episodes', 'solved', 'returns', 'lengths')


class PPO:
  """`init` and `update` for one (seed, level); callers vmap and jit them."""

  def __init__(self, agent: agent_lib.ExpertAgent, env: envs.BatchedEnv,
               settings: Settings):
    settings.validate()
    if env.num_envs != settings.num_envs:
      raise ValueError(f'env has {env.num_envs} envs, settings '
                       f'{settings.num_envs}.')
    self.agent = agent
    self.env = env
    self.settings = settings
    self.optimizer = make_optimizer(settings)
    self.max_timesteps = int(env.env_params.max_timesteps)

  def init(self, key_data, level, learning_rate) -> Runner:
    key = jax.random.wrap_key_data(key_data)
    k_params, k_env, key = jax.random.split(key, 3)
    params = self.agent.init(k_params)
    opt_state = self.optimizer.init(params)
    inject = opt_state[1]
    hyper = dict(inject.hyperparams)
    hyper['learning_rate'] = jnp.asarray(learning_rate, jnp.float32)
    opt_state = (opt_state[0], inject._replace(hyperparams=hyper))
    obs, env_state = self.env.reset(k_env, level)
    prev = jnp.full((self.settings.num_envs,), -1.0, jnp.float32)
    return Runner(params, opt_state, env_state, obs, prev,
                  jax.random.key_data(key))

  def rollout(self, runner: Runner, level):
    """num_steps steps; returns (runner, transitions [S, N], stats sums)."""
    agent, env, s = self.agent, self.env, self.settings

    def step(carry, _):
      env_state, obs, prev_distance, key = carry
      key, k_act, k_env = jax.random.split(key, 3)
      dist, value = agent.apply(runner.params, obs)
      action, log_prob = dist.sample(k_act)
      next_obs, env_state, reward, done, info = env.step(
          k_env, env_state, action, level)
      shaped, prev_distance = shaped_reward(
          s.shaping, reward, done, info['distance'], prev_distance,
          info['returned_episode_lengths'], self.max_timesteps)
      stats = jnp.stack([
          jnp.sum(done),
          jnp.sum(done & info['returned_episode_solved']),
          jnp.sum(jnp.where(done, info['returned_episode_returns'], 0.0)),
          jnp.sum(jnp.where(done, info['returned_episode_lengths'], 0)),
      ]).astype(jnp.float32)
      tr = Transition(obs, action, log_prob, value, shaped, done)
      return (env_state, next_obs, prev_distance, key), (tr, stats)

    key = jax.random.wrap_key_data(runner.key)
    key, k_roll = jax.random.split(key)
    (env_state, obs, prev, _), (traj, stats) = jax.lax.scan(
        step, (runner.env_state, runner.obs, runner.prev_distance, k_roll),
        None, length=s.num_steps)
    runner = runner._replace(env_state=env_state, obs=obs,
                             prev_distance=prev,
                             key=jax.random.key_data(key))
    return runner, traj, jnp.sum(stats, axis=0)

  def loss(self, params, key, batch):
    """PPO-clip + value loss with RPO; returns (loss, metrics)."""
    s = self.settings
    obs, action, old_logp, old_value, adv, target = batch
    noise = jax.random.uniform(key, action.shape, minval=-s.rpo_alpha,
                               maxval=s.rpo_alpha)
    dist, value = self.agent.apply(params, obs, mean_noise=noise)
    log_prob = dist.log_prob(action)
    log_ratio = log_prob - old_logp
    ratio = jnp.exp(log_ratio)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = -jnp.mean(jnp.minimum(
        ratio * adv, jnp.clip(ratio, 1 - s.clip_eps, 1 + s.clip_eps) * adv))
    value_clipped = old_value + jnp.clip(value - old_value, -s.clip_eps,
                                         s.clip_eps)
    value_loss = 0.5 * jnp.mean(jnp.maximum(
        (value - target)**2, (value_clipped - target)**2))
    entropy = jnp.mean(dist.normal_entropy())
    loss = pg_loss + s.vf_coef * value_loss - s.ent_coef * entropy
    metrics = {
        'loss': loss, 'pg_loss': pg_loss, 'value_loss': value_loss,
        'entropy': entropy,
        'approx_kl': jnp.mean((ratio - 1) - log_ratio),
        'clip_frac': jnp.mean((jnp.abs(ratio - 1) > s.clip_eps).astype(
            jnp.float32)),
    }
    return loss, metrics

  def update(self, runner: Runner, level):
    """One PPO update; returns (runner, metrics of scalars)."""
    s = self.settings
    runner, traj, stats = self.rollout(runner, level)
    _, last_value = self.agent.apply(runner.params, runner.obs)
    adv = gae(traj.reward, traj.value, traj.done, last_value, s.gamma,
              s.gae_lambda)
    target = adv + traj.value
    flat = jax.tree.map(
        lambda x: x.reshape((s.batch_size,) + x.shape[2:]),
        (traj.obs, traj.action, traj.log_prob, traj.value, adv, target))
    mb_size = s.batch_size // s.num_minibatches
    grad_fn = jax.value_and_grad(self.loss, has_aux=True)

    def minibatch(carry, idx_key):
      params, opt_state = carry
      idx, key = idx_key
      batch = jax.tree.map(lambda x: jnp.take(x, idx, axis=0), flat)
      (_, metrics), grads = grad_fn(params, key, batch)
      updates, opt_state = self.optimizer.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      metrics['grad_norm'] = optax.tree.norm(grads)
      return (params, opt_state), metrics

    def epoch(carry, key):
      k_perm, k_rpo = jax.random.split(key)
      perm = jax.random.permutation(k_perm, s.batch_size)
      idx = perm.reshape(s.num_minibatches, mb_size)
      keys = jax.random.split(k_rpo, s.num_minibatches)
      return jax.lax.scan(minibatch, carry, (idx, keys))

    key = jax.random.wrap_key_data(runner.key)
    key, k_epochs = jax.random.split(key)
    (params, opt_state), metrics = jax.lax.scan(
        epoch, (runner.params, runner.opt_state),
        jax.random.split(k_epochs, s.update_epochs))
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics['shaped_reward'] = jnp.mean(traj.reward)
    for i, name in enumerate(STAT_KEYS):
      metrics[name] = stats[i]
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x))
                                for x in jax.tree.leaves(params)]))
    metrics['finite'] = finite & jnp.isfinite(metrics['loss'])
    runner = runner._replace(params=params, opt_state=opt_state,
                             key=jax.random.key_data(key))
    return runner, metrics
