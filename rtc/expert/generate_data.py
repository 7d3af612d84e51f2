r"""Generates behaviour-cloning data from an expert run (DESIGN §10).

  bazel run //rtc/expert:generate_data -- --config=configs/data.py \
      --config.run_path=logs-expert/<run>
  bazel run //rtc/expert:generate_data -- --config=configs/data.py:quickstart \
      --config.run_path=logs-expert/<run>

Per level (all levels at once, vmapped and sharded over devices):

* Experts: per seed, a checkpoint chosen by rtc.expert.store.choose_experts
  (a random one with solve rate >= `solve_threshold`, else the best, which
  is then left out of the mixture; if no seed reaches the threshold, the best
  checkpoint over all seeds alone).
* `num_envs` environments (BatchedEnv: action noise 0.1, auto-reset), each
  following one expert of the mixture, drawn uniformly at the start and anew
  at every episode end. Experts sample their squashed-normal actions
  (`deterministic` uses the squashed mean instead).
* `ceil(num_steps / num_envs)` steps are written to
  `<run_path>/data/<level_name>.npz` with np.savez (uncompressed, so
  rtc.common.env.data memory-maps it): `obs` [T,E,O] float32, the plain
  observation the action was taken on (no history, no previous action);
  `action` [T,E,A] float32, the expert's action before the environment's
  noise; `done` [T,E] bool, the step ended an episode; `solved` [T,E] bool;
  `return_` [T,E] float32 and `length` [T,E] int32, the episode's task
  return and length so far (the finished episode's where `done`).
  Steps are generated in equal chunks of at most `chunk_steps` (one
  compiled call) into temporary .npy files
  beside the output, so memory stays bounded for the paper's 1M steps x 679
  dims per level; the .npz is then written to a temporary file and renamed.
* A progress line with environment steps per second and the time left, and
  per level the episodes, mean return, mean length and solve rate.

In a job of several processes (`--config.distributed.*`,
rtc.common.bc.distributed; docs/scaling.md) the levels are split over every
process's devices: every process makes the same choice of checkpoints, loads
the experts of its own levels only and writes their .npz files; process 0
prints the progress and (gathered) every level's summary. The files equal
those of one process on the same total device count.

Runs written by the earlier Flax implementation work unchanged: without a
config.json the levels are found by their file names in the worlds
directory, the observation history is 4, and the pickles are converted by
rtc.common.bc.checkpoints.
"""

import collections
import math
import os
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import paths
from rtc.common.base import progress as progress_lib
from rtc.common.base import validate
from rtc.common.bc import checkpoints
from rtc.common.bc import distributed
from rtc.common.bc import sharding
from rtc.common.cli import cli
from rtc.expert import agent as agent_lib
from rtc.expert import level_files
from rtc.expert import store

REFERENCE_OBS_HISTORY = 4
FIELDS = ('obs', 'action', 'done', 'solved', 'return_', 'length')
SUMMARY = ('episodes', 'return', 'length', 'solved')
# A later call in this process on levels of the same physics and sizes (a
# resumed job, the next replicate of a benchmark) reuses the jitted init/run
# instead of tracing Kinetix's step again (15-30 s on two CPU cores). The
# level states, parameters, mask and keys are their arguments.
_PROGRAMS = collections.OrderedDict()
PROGRAMS_KEPT = 4

# envs and runs import Kinetix, which starts JAX's backend: they are imported
# inside the functions, after distributed.initialize.


def _resolve_levels(config, run_path: str, info):
  """(level ids, worlds dir) for the run."""
  # pylint: disable=g-import-not-at-top
  from rtc.common.env import envs
  from rtc.common.bc import runs
  # pylint: enable=g-import-not-at-top
  worlds_dir = paths.resolve(config.worlds_dir) or (
      (info or {}).get('worlds_dir') or None)
  if config.levels:
    return envs.parse_levels(config.levels), worlds_dir
  names = store.level_names(run_path)
  by_name = {}
  if info and info.get('levels'):
    by_name = {envs.level_name(i): i for i in info['levels']}
  if all(n in by_name for n in names):
    return tuple(by_name[n] for n in names), worlds_dir
  return runs.level_ids_for_names(names, worlds_dir), worlds_dir


def _mixture_mask(names, choices):
  """[L, M]: which of the M mixture slots of each level hold an expert."""
  sizes = [sum(c.in_mixture for c in choices[n]) for n in names]
  return np.arange(max(sizes))[None] < np.array(sizes)[:, None]


def _load_mixtures(run_path, names, choices, size, expected=None):
  """Stacked mixture params [len(names), size, ...], each level's experts
  followed by copies of its first."""
  per_level = []
  for name in names:
    trees = []
    for c in choices[name]:
      if not c.in_mixture:
        continue
      path = c.path(run_path, name)
      params = checkpoints.load_params(path)
      if expected is None:
        if f'{agent_lib.ROOT}/actor_0' not in params:
          raise ValueError(
              f'Checkpoint {path} is not an expert agent (no '
              f'{agent_lib.ROOT}/actor_0); pass an expert run as '
              '--config.run_path.')
        expected = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
            np.shape(x), np.float32), params)
      checkpoints.check_params(params, expected, path)
      trees.append(jax.tree.map(lambda x: np.asarray(x, np.float32), params))
    per_level.append(trees)
  stacked = [jax.tree.map(lambda *x: np.stack(x),
                          *(trees + [trees[0]] * (size - len(trees))))
             for trees in per_level]
  return jax.tree.map(lambda *x: np.stack(x), *stacked)


class _Generator:
  """init/run for one level: a mixture of experts driving `num_envs` envs."""

  def __init__(self, agent: agent_lib.ExpertAgent, env, chunk: int,
               deterministic: bool):
    self.agent, self.env = agent, env
    self.chunk, self.deterministic = chunk, deterministic

  def _draw(self, key, mask):
    logits = jnp.where(mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits, shape=(self.env.num_envs,))

  def init(self, key_data, mask, level):
    key = jax.random.wrap_key_data(key_data)
    k_env, k_draw, key = jax.random.split(key, 3)
    obs, state = self.env.reset(k_env, level)
    return state, obs, self._draw(k_draw, mask), jax.random.key_data(key)

  def run(self, params, mask, carry, level):
    """`chunk` steps; returns (carry, {field: [chunk, E, ...]})."""
    agent, env = self.agent, self.env
    rows = jnp.arange(env.num_envs)

    def step(carry, _):
      state, obs, idx, key = carry
      key, k_act, k_env, k_draw = jax.random.split(key, 4)
      dists = jax.vmap(lambda p: agent.policy(p, obs))(params)
      mean = dists.mean[idx, rows]
      std = dists.std[idx]  # [M, A]: the log-std is state-independent.
      dist = agent_lib.SquashedNormal(mean, std, agent.is_tanh)
      action = dist.mode() if self.deterministic else dist.sample(k_act)[0]
      plain = state.history[:, -1]
      obs, state, _, done, info = env.step(k_env, state, action, level)
      idx = jnp.where(done, self._draw(k_draw, mask), idx)
      out = {'obs': plain, 'action': action, 'done': done,
             'solved': info['solved'],
             'return_': info['returned_episode_returns'],
             'length': info['returned_episode_lengths'].astype(jnp.int32)}
      return (state, obs, idx, key), out

    state, obs, idx, key_data = carry
    key = jax.random.wrap_key_data(key_data)
    (state, obs, idx, key), out = jax.lax.scan(
        step, (state, obs, idx, key), None, length=self.chunk)
    return (state, obs, idx, jax.random.key_data(key)), out


def generate(config, log: Callable[[str], None] = print) -> list[str]:
  """Writes `<run_path>/data/<level_name>.npz` per level; returns the paths."""
  validate.check_config(config, validate.DATA)
  distributed.initialize(config.get('distributed'))
  with distributed.guard():
    return _generate(config, distributed.main_only(log))


def _gather_summaries(shard, local: dict) -> np.ndarray:
  """[L, len(SUMMARY)]: every level's summary, from the processes that
  wrote it (a collective)."""
  rows = np.array([[local[i][k] if i in local else 0.0 for k in SUMMARY]
                   for i in shard.local_slots], np.float32)
  return shard.unpad(shard.put_local(rows))


def _generate(config, log: Callable[[str], None]) -> list[str]:
  # pylint: disable=g-import-not-at-top
  from rtc.common.env import envs
  from rtc.common.bc import runs
  # pylint: enable=g-import-not-at-top
  if not config.run_path:
    raise ValueError(
        '--config.run_path is required: the expert run directory (e.g. '
        'logs-expert/<run>) that `bazel run //rtc/expert:train` wrote.')
  run_path = paths.resolve(config.run_path)
  store.check_run_dir(run_path)
  info = runs.read_run_config(run_path)
  level_ids, worlds_dir = _resolve_levels(config, run_path, info)
  all_levels = envs.load_levels(level_ids, worlds_dir)
  names = all_levels.names
  num_envs = int(config.num_envs)

  rng = np.random.default_rng(int(config.seed))
  threshold = float(config.solve_threshold)
  choices = {n: store.choose_experts(run_path, n, threshold, rng)
             for n in names}
  for name in names:
    parts = [f'seed {c.seed} @ {c.update} (solved {c.solved:.2f})'
             + ('' if c.in_mixture else ', left out')
             for c in choices[name]]
    note = ''
    if not any(c.in_mixture and c.solved >= threshold
               for c in choices[name]):
      note = (f'; no checkpoint reaches {threshold:.2f}: using the best one '
              'alone')
    log(f'[generate] {name}: ' + '; '.join(parts) + note)

  obs_history = int((info or {}).get('obs_history', REFERENCE_OBS_HISTORY))
  t_len = math.ceil(int(config.num_steps) / num_envs)
  all_paths = [os.path.join(run_path, 'data', f'{n}.npz') for n in names]
  metas = [level_files.meta_record({
      'seed': int(config.seed), 'level_index': i, 'num_envs': num_envs,
      'steps_per_env': t_len, 'deterministic': bool(config.deterministic),
      'obs_history': obs_history,
      'experts': [[c.seed, c.update, bool(c.in_mixture)]
                  for c in choices[n]]}) for i, n in enumerate(names)]
  specs_all = _specs(t_len, num_envs, all_levels.level(0),
                     envs.BatchedEnv.for_levels(
                         all_levels, 1, obs_history=obs_history,
                         include_prev_action=True))
  # Process 0 decides which levels are left, so every process agrees.
  todo = [int(i) for i in distributed.shared_value(lambda: ','.join(
      str(i) for i in _left(all_paths, specs_all, metas, names, log))
  ).split(',') if i]
  if not todo:
    log(f'[generate] every level\'s data is complete in {run_path}/data')
    return all_paths
  levels = (all_levels if len(todo) == len(names) else envs.load_levels(
      [level_ids[i] for i in todo], worlds_dir, pad_like=level_ids))
  names = levels.names
  out_paths = [all_paths[i] for i in todo]
  metas = [metas[i] for i in todo]
  level_keys = [jax.random.fold_in(jax.random.key(int(config.seed)), i)
                for i in todo]

  shard = sharding.LevelSharding(len(levels))
  mask = _mixture_mask(names, choices)
  # This process's levels only; a row per local slot.
  local = _load_mixtures(run_path, [names[i] for i in shard.local_levels],
                         choices, mask.shape[1])
  rows = [shard.local_levels.index(i) for i in shard.local_slot_levels]
  params = jax.tree.map(lambda x: x[np.array(rows)], local)
  first = jax.tree.map(lambda x: x[0, 0], params)
  num_motor = int(levels.static_params.num_motor_bindings)
  agent = agent_lib.agent_for_params(first, num_motor)
  env = envs.BatchedEnv.for_levels(levels, num_envs, obs_history=obs_history,
                                   include_prev_action=True)
  level0 = levels.level(0)
  if agent.obs_dim != env.obs_dim(level0) or (
      agent.action_dim != env.action_dim):
    raise ValueError(
        f'Expert checkpoints of {run_path} take observations of '
        f'{agent.obs_dim} dims and give {agent.action_dim} actions, but the '
        f'level gives {env.obs_dim(level0)} ({obs_history} observations of '
        f'{env.plain_obs_dim(level0)} + {env.action_dim} actions): check '
        '--config.levels / --config.worlds_dir against the run.')

  # Equal chunks of at most chunk_steps covering t_len; the last call's few
  # extra steps (fewer than the number of calls) are dropped.
  num_chunks = math.ceil(t_len / max(1, int(config.chunk_steps)))
  chunk = math.ceil(t_len / num_chunks)
  init_fn, run_fn = _programs(agent, env, levels, chunk,
                              bool(config.deterministic), shard)
  keys = np.stack([np.asarray(jax.random.key_data(k)) for k in level_keys])
  states = shard.pad(levels.states)
  params_p, mask_p = shard.put_local(params), shard.pad(mask)
  carry = init_fn(shard.pad(keys), mask_p, states)

  specs = _specs(t_len, num_envs, level0, env)
  total = t_len * num_envs * len(levels)
  log(f'[generate] {len(levels)} level(s), {t_len} steps x {num_envs} envs '
      f'each ({t_len * num_envs:,} per level) -> {run_path}/data')
  progress = progress_lib.Progress(total, 'env steps', 'generate')
  writers = {}  # This process's levels.
  try:
    writers = {i: level_files.LevelWriter(out_paths[i], specs, metas[i])
               for i in shard.owned_levels}
    t_last, done_rows = time.time(), 0
    while done_rows < t_len:
      carry, out = run_fn(params_p, mask_p, carry, states)
      out = shard.local_values(out)
      n = min(chunk, t_len - done_rows)
      for i, w in writers.items():
        w.write(out[i], n)
      done_rows += n
      now = time.time()
      sps = n * num_envs * len(levels) / max(now - t_last, 1e-9)
      t_last = now
      log(progress.line(done_rows * num_envs * len(levels),
                        f'{sps:,.0f} env steps/s'))
    for w in writers.values():
      w.finish()
  finally:
    for w in writers.values():
      w.cleanup()
  summaries = _gather_summaries(
      shard, {i: w.summary() for i, w in writers.items()})
  for name, s, p in zip(names, summaries, out_paths):
    s = dict(zip(SUMMARY, s))
    log(f'[generate] {name}: {int(s["episodes"])} episodes, mean return '
        f'{s["return"]:.3f}, mean length {s["length"]:.1f}, solve rate '
        f'{s["solved"]:.3f} -> {p}')
  return all_paths


def _programs(agent, env, levels, chunk: int, deterministic: bool,
              shard: sharding.LevelSharding):
  """The sharded (init, run) of a generator, made once per program."""
  key = (levels.static_params, levels.env_params, env.num_envs,
         env.obs_history, env.include_prev_action, env.action_noise_std,
         env.legacy_episode_end,
         agent.obs_dim, agent.action_dim, agent.num_motor, agent.hidden_dim,
         chunk, deterministic, shard.num_levels, tuple(shard.devices))
  if key not in _PROGRAMS:
    gen = _Generator(agent, env, chunk, deterministic)
    _PROGRAMS[key] = (
        shard.map(gen.init, in_axes=(0, 0, 0)),
        shard.map(gen.run, in_axes=(0, 0, 0, 0), donate_argnums=(2,)))
    while len(_PROGRAMS) > PROGRAMS_KEPT:
      _PROGRAMS.popitem(last=False)
  _PROGRAMS.move_to_end(key)
  return _PROGRAMS[key]


def _specs(t_len, num_envs, level, env) -> dict:
  """{field: (shape, dtype)} of a level's .npz."""
  return {'obs': ((t_len, num_envs, env.plain_obs_dim(level)), np.float32),
          'action': ((t_len, num_envs, env.action_dim), np.float32),
          'done': ((t_len, num_envs), np.bool_),
          'solved': ((t_len, num_envs), np.bool_),
          'return_': ((t_len, num_envs), np.float32),
          'length': ((t_len, num_envs), np.int32)}


def _left(out_paths, specs, metas, names, log) -> list[int]:
  """The levels whose .npz is not complete; says which are skipped."""
  left = []
  for i, (path, meta) in enumerate(zip(out_paths, metas)):
    why = level_files.incomplete(path, specs, meta)
    if why is None:
      log(f'[generate] {names[i]}: {path} is complete, skipped')
    else:
      if why != 'missing':
        log(f'[generate] {names[i]}: {path} {why}: generating it again')
      left.append(i)
  return left


def _check(config, flag_values):
  del flag_values
  if config.run_path and os.path.isdir(paths.resolve(config.run_path)):
    paths.check_writable_dir(
        os.path.join(paths.resolve(config.run_path), 'data'),
        '--config.run_path (its data/ directory)')


# The binary (rtc.common.cli.cli.Binary); --config is defined only when this
# module runs as a binary (see rtc.expert.train).
BINARY = cli.Binary(
    config_file='data.py',
    help='Data generation configuration (an ml_collections config file).',
    table=validate.DATA, check=_check,
    work=lambda config, flag_values: generate(config))

if __name__ == '__main__':
  cli.run(BINARY)
