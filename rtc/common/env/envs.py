"""Kinetix environments: level loading and a batched, auto-replaying environment.

Levels are named by their path relative to a worlds directory, e.g.
`l/grasp_easy.json`. The default worlds directory is the one kinetix-env ships
(`kinetix/levels`, which holds 8 of the paper's 12 large levels plus small `s/`
and medium `m/` levels); `worlds_dir` points at another one, e.g.
the earlier implementation's `worlds/` (all 12; DESIGN §11). A level's name is
`worlds_<id with / as _, without .json>`, e.g. `worlds_l_grasp_easy`, the name
the earlier implementation gave its data files and checkpoints.

`BatchedEnv` runs `num_envs` copies of one level (DESIGN §9):

* symbolic-flat observations, continuous actions, frame skip and sizes from the
  level file, at most `max_timesteps` (256) steps per episode;
* Gaussian action noise (std 0.1) added inside the environment;
* automatic reset to the same level when an episode ends;
* the task's reward (+1 solved, -1 failed, 0 otherwise): kinetix 3's own
  distance shaping (`EnvParams.dense_reward_scale`) is switched off here, and
  learners that want shaping add it themselves from `info['distance']`;
* episode statistics, including those of the first finished episode of every
  environment (what evaluation reports);
* optional observation history (the last k plain observations, oldest first)
  and the previous action appended, as the PPO experts use;
* `legacy_episode_end`: the older Kinetix engine's episode-end scoring
  (rtc.common.env.legacy_engine; docs/kinetix_engine.md) instead of 3.0.2's.

All methods act on one level (an unbatched kinetix `EnvState`) and are pure, so
callers vmap them over levels and jit them.
"""

import dataclasses
import hashlib
import json
import os
import pickle
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import quiet

from rtc.common.base import cache
from rtc.common.env import kinetix_import
from rtc.common.env import legacy_engine
from rtc.common.env import level_ids

quiet.install_filters()  # Before Kinetix loads Grain, which logs a note.
_kinetix = kinetix_import.load()
EnvParams = _kinetix.EnvParams
StaticEnvParams = _kinetix.StaticEnvParams

ACTION_NOISE_STD = 0.1

PAPER_LEVELS = level_ids.PAPER_LEVELS
PACKAGED_PAPER_LEVELS = level_ids.PACKAGED_PAPER_LEVELS
LEVEL_SETS = level_ids.LEVEL_SETS
package_worlds_dir = level_ids.package_worlds_dir
parse_levels = level_ids.parse_levels
level_name = level_ids.level_name
resolve_worlds_dir = level_ids.resolve_worlds_dir


@dataclasses.dataclass(frozen=True)
class Levels:
  """A set of levels that share static parameters, stacked along axis 0."""
  ids: tuple[str, ...]
  paths: tuple[str, ...]
  states: object  # kinetix EnvState with a leading level axis.
  static_params: StaticEnvParams
  env_params: EnvParams

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(level_name(i) for i in self.ids)

  def __len__(self):
    return len(self.ids)

  def level(self, i: int):
    return jax.tree.map(lambda x: x[i], self.states)


# Static parameters that only count entities: levels differing in these
# alone are padded to the largest counts (kinetix's expand_env_state, which
# adds inactive shapes), so s/ and m/ levels can share one run.
COUNT_FIELDS = ('num_polygons', 'num_circles', 'num_joints', 'num_thrusters')


def common_static_params(static_params: Sequence[StaticEnvParams],
                         paths: Sequence[str]) -> StaticEnvParams:
  """The largest entity counts of `static_params`; other fields must match.

  Raises a one-line error naming the first file whose other static
  parameters differ from those of `paths[0]`.
  """
  first = static_params[0]
  fields = {k: max(getattr(sp, k) for sp in static_params)
            for k in COUNT_FIELDS}

  def others(sp):  # Field by field: StaticEnvParams' == skips some fields.
    return {f.name: getattr(sp, f.name) for f in dataclasses.fields(sp)
            if f.name not in COUNT_FIELDS}

  for sp, path in zip(static_params, paths):
    if others(sp) != others(first):
      raise ValueError(
          f'Level file {path} has static parameters {sp}, which differ from '
          f'those of {paths[0]} ({first}) beyond the entity counts '
          f'{COUNT_FIELDS}; all levels of one run must share them: run them '
          'separately.')
  return first.replace(**fields)


def load_levels(level_ids: Sequence[str] | str,
                worlds_dir: str | None = None,
                max_timesteps: int = 256,
                pad_like: Sequence[str] | str | None = None) -> Levels:
  """Loads levels from `worlds_dir` (default: kinetix-env's own levels).

  Levels whose static parameters differ only in entity counts (s/ and m/)
  are padded to the largest counts among `pad_like` (default: these
  levels): an evaluation of some of a run's levels passes the run's levels
  so that observations keep the run's shapes.
  Raises a one-line error naming the file for a missing or unreadable level,
  and for a level whose other static parameters differ from the first one's.
  """
  ids = parse_levels(level_ids)
  root = resolve_worlds_dir(worlds_dir)
  parsed, paths = [], []
  for level_id in ids:
    path = _level_path(root, level_id)
    parsed.append(_load_level_file(path))
    paths.append(path)
  static_list = [sp for _, sp, _ in parsed]
  all_paths = list(paths)
  if pad_like is not None:
    for level_id in parse_levels(pad_like):
      path = _level_path(root, level_id)
      if path not in all_paths:
        static_list.append(_load_level_file(path)[1])
        all_paths.append(path)
  static_params = common_static_params(static_list, all_paths)
  states = [state if _same(sp, static_params) else jax.tree.map(
      np.asarray, _kinetix.saving.expand_env_state(state, static_params))
            for state, sp, _ in parsed]
  env_params = parsed[0][2].replace(max_timesteps=max_timesteps,
                                    dense_reward_scale=0.0)
  stacked = jax.tree.map(lambda *x: jnp.stack(x), *states)
  return Levels(ids, tuple(paths), stacked, static_params, env_params)


def _same(a: StaticEnvParams, b: StaticEnvParams) -> bool:
  return all(getattr(a, k) == getattr(b, k) for k in COUNT_FIELDS)


def _level_path(root: str, level_id: str) -> str:
  path = os.path.join(root, level_id)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Level file {path} not found: check --config.levels, or set '
        '--config.worlds_dir to the folder that holds it (e.g. '
        'the earlier implementation\'s worlds/ for the paper levels).')
  return path


def _parse_level_file(path: str):
  try:
    state, sp, ep = _kinetix.saving.load_from_json_file(path)
  except (json.JSONDecodeError, KeyError, ValueError, TypeError,
          AttributeError, IndexError) as e:
    raise ValueError(
        f'Level file {path} is not a readable Kinetix level '
        f'({type(e).__name__}: {e}); replace it with a valid level JSON.'
    ) from None
  return jax.tree.map(np.asarray, state), sp, ep


def _load_level_file(path: str):
  """Parses a level file, through the on-disk cache when there is one."""
  with open(path, 'rb') as f:
    contents = f.read()
  directory = cache.cache_dir('levels')
  if directory is None:
    return _parse_level_file(path)
  key = hashlib.sha256(contents + kinetix_version().encode()).hexdigest()
  cached = os.path.join(directory, key + '.pkl')
  try:
    with open(cached, 'rb') as f:
      return pickle.load(f)
  except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
    pass
  parsed = _parse_level_file(path)
  tmp = f'{cached}.{os.getpid()}.tmp'
  try:
    with open(tmp, 'wb') as f:
      pickle.dump(parsed, f)
    os.replace(tmp, cached)
  except OSError:
    pass
  return parsed


def kinetix_version() -> str:
  try:
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    return metadata.version('kinetix-env')
  except Exception:  # pylint: disable=broad-except
    return 'unknown'


class EpisodeStats(NamedTuple):
  """Running and first-finished episode statistics, per environment."""
  episode_return: jax.Array
  episode_length: jax.Array
  first_return: jax.Array
  first_length: jax.Array
  first_solved: jax.Array
  first_done: jax.Array

  @classmethod
  def zeros(cls, num_envs: int):
    f = jnp.zeros((num_envs,), jnp.float32)
    i = jnp.zeros((num_envs,), jnp.int32)
    b = jnp.zeros((num_envs,), bool)
    return cls(f, i, f, i, b, b)

  def update(self, reward, done, solved):
    """Returns (new stats, this step's finished-episode return and length)."""
    ret = self.episode_return + reward
    length = self.episode_length + 1
    new_first = done & ~self.first_done
    stats = EpisodeStats(
        episode_return=jnp.where(done, 0.0, ret),
        episode_length=jnp.where(done, 0, length),
        first_return=jnp.where(new_first, ret, self.first_return),
        first_length=jnp.where(new_first, length, self.first_length),
        first_solved=jnp.where(new_first, solved, self.first_solved),
        first_done=self.first_done | done)
    return stats, ret, length


class EnvState(NamedTuple):
  env: object  # Batched kinetix EnvState.
  history: jax.Array  # [N, k, O] last plain observations, oldest first.
  prev_action: jax.Array  # [N, A]
  stats: EpisodeStats


class BatchedEnv:
  """`num_envs` copies of one level with noise, auto-replay and statistics."""

  def __init__(self, static_params: StaticEnvParams, env_params: EnvParams,
               num_envs: int, action_noise_std: float = ACTION_NOISE_STD,
               obs_history: int = 1, include_prev_action: bool = False,
               legacy_episode_end: bool = False):
    if num_envs < 1:
      raise ValueError(f'num_envs must be >= 1, got {num_envs}.')
    if obs_history < 1:
      raise ValueError(f'obs_history must be >= 1, got {obs_history}.')
    self.static_params = static_params
    self.env_params = env_params
    self.num_envs = num_envs
    self.action_noise_std = action_noise_std
    self.obs_history = obs_history
    self.include_prev_action = include_prev_action
    self.legacy_episode_end = legacy_episode_end
    self.kinetix_env = _kinetix.make_kinetix_env(
        _kinetix.ActionType.CONTINUOUS, _kinetix.ObservationType.SYMBOLIC_FLAT,
        None, env_params, static_params)
    self.action_dim = int(
        self.kinetix_env.action_space(env_params).shape[0])

  @classmethod
  def for_levels(cls, levels: Levels, num_envs: int, **kwargs):
    return cls(levels.static_params, levels.env_params, num_envs, **kwargs)

  def plain_obs_dim(self, level) -> int:
    shape = jax.eval_shape(
        lambda lv: self.kinetix_env.reset(jax.random.key(0), self.env_params,
                                          lv)[0], level)
    return int(shape.shape[-1])

  def obs_dim(self, level) -> int:
    """Dimension of what `reset`/`step` return as the observation."""
    dim = self.plain_obs_dim(level) * self.obs_history
    return dim + (self.action_dim if self.include_prev_action else 0)

  def _observe(self, history, prev_action):
    obs = history.reshape(history.shape[0], -1)
    if self.include_prev_action:
      obs = jnp.concatenate([obs, prev_action], axis=-1)
    return obs

  def reset(self, key: jax.Array, level) -> tuple[jax.Array, EnvState]:
    keys = jax.random.split(key, self.num_envs)
    obs, env = jax.vmap(self.kinetix_env.reset, in_axes=(0, None, None))(
        keys, self.env_params, level)
    history = jnp.repeat(obs[:, None], self.obs_history, axis=1)
    prev_action = jnp.zeros((self.num_envs, self.action_dim), jnp.float32)
    state = EnvState(env, history, prev_action,
                     EpisodeStats.zeros(self.num_envs))
    return self._observe(history, prev_action), state

  def step(self, key: jax.Array, state: EnvState, action: jax.Array, level):
    """One step of every environment.

    Returns (obs, state, reward, done, info) with the task reward and `info`
    holding `solved`, `distance` (kinetix's goal distance, for shaping) and the
    just-finished episode's `returned_episode_returns/lengths/solved` (valid
    where `done`).
    """
    key_noise, key_step = jax.random.split(key)
    noisy = action + self.action_noise_std * jax.random.normal(
        key_noise, action.shape)
    keys = jax.random.split(key_step, self.num_envs)
    if self.legacy_episode_end:
      obs, env, reward, done, kinfo = jax.vmap(
          lambda k, s, a, lv: legacy_engine.step(
              self.kinetix_env, self.env_params, k, s, a, lv),
          in_axes=(0, 0, 0, None))(keys, state.env, noisy, level)
    else:
      obs, env, reward, done, kinfo = jax.vmap(
          self.kinetix_env.step, in_axes=(0, 0, 0, None, None))(
              keys, state.env, noisy, self.env_params, level)
    solved = kinfo['GoalR'] & done
    stats, ep_return, ep_length = state.stats.update(reward, done, solved)
    rolled = jnp.concatenate([state.history[:, 1:], obs[:, None]], axis=1)
    history = jnp.where(done[:, None, None],
                        jnp.repeat(obs[:, None], self.obs_history, axis=1),
                        rolled)
    prev_action = jnp.where(done[:, None], 0.0, action)
    info = {
        'solved': solved,
        'distance': kinfo['distance'],
        'returned_episode_returns': ep_return,
        'returned_episode_lengths': ep_length,
        'returned_episode_solved': solved,
    }
    new_state = EnvState(env, history, prev_action, stats)
    return self._observe(history, prev_action), new_state, reward, done, info


def first_episode_metrics(stats: EpisodeStats) -> dict:
  """Means over environments of the first finished episode (DESIGN §9)."""
  return {
      'returned_episode_returns': jnp.mean(stats.first_return),
      'returned_episode_lengths': jnp.mean(stats.first_length.astype(
          jnp.float32)),
      'returned_episode_solved': jnp.mean(stats.first_solved.astype(
          jnp.float32)),
  }
