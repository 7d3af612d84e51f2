r"""Trains PPO experts, several seeds per level, all at once.

  bazel run //rtc/expert:train -- --config=configs/expert.py          # paper
  bazel run //rtc/expert:train -- --config=configs/expert.py:cpu      # ~15 min
  bazel run //rtc/expert:train -- --config=configs/expert.py:quickstart

Every (seed, level) pair is one independent PPO learner (rtc.expert.ppo);
the pairs are flattened into one leading axis, vmapped and sharded over the
local devices (rtc.common.bc.sharding). With `parallel_levels` > 0 the levels
are trained in groups of that many, one group after another (bounded
accelerator memory for the paper's 12 large levels).

Outputs, every `save_every` updates and after the last one
(`<logdir>/<run_name>/`, rtc.expert.store):

* `seed_<i>/<update>/policies/<level_name>.pkl` (Haiku params, reference
  names) and `seed_<i>/<update>/stats/<level_name>.json` with the mean over
  the episodes that finished since the previous checkpoint of
  `returned_episode_solved`, `_returns` (task reward), `_lengths`, and the
  number of `episodes`;
* TensorBoard curves under `tb/` per level and seed
  (`<level>/seed_<i>/solved`, `return`, `length`, losses, ...) and the mean
  over seeds (`<level>/mean/solved`), against environment steps per seed;
* a progress line with environment steps per second and the time left;
* `config.json` with the levels, sizes and every option.

A non-finite loss or parameter stops the run with an error naming the level
and seed; the checkpoints already written are complete and stay valid.

Runs resume. At every save the learners' whole state (parameters, optimiser,
environments, keys) is also written to `resume/levels_<i>-<j>.pkl`, one file
per group of levels; running the same configuration again under the same
`run_name` continues every group from its last save, and gives the same
checkpoints as an uninterrupted run. The state is about 36 KB per
environment on m/h0_unicycle (4.6 MB for the quickstart's 2 x 64). Only
`num_updates` (to extend a finished run) and `save_every` may change; other
changes are refused with the first difference named.

In a job of several processes (`--config.distributed.*`,
rtc.common.bc.distributed; docs/scaling.md) the units of a group span
every process's devices: each process runs its own units and writes their
`seed_<i>/<update>/` checkpoints; process 0 writes `config.json`,
TensorBoard and (gathered, without the padding, so a resume may use another
process or device count) the `resume/` state, and prints the progress
lines. The checkpoints equal those of one process on the same total device
count (each device computes the same units either way).

`train` and rtc.expert.generate_data's `generate` take the ConfigDicts of
configs/expert.py and configs/data.py; the --config flag is defined only
when a module runs as a binary, so both can be imported together.

Reward shaping: see rtc.expert.ppo (`--config.shaping`).
"""

import collections
import json
import os
import pickle
import time
from typing import Callable

import jax
import numpy as np

from rtc.common.base import paths
from rtc.common.base import progress
from rtc.common.base import validate
from rtc.common.bc import checkpoints
from rtc.common.bc import distributed
from rtc.common.bc import sharding
from rtc.common.bc import summary
from rtc.common.cli import cli
from rtc.expert import agent as agent_lib
from rtc.expert import store

# envs, runs and ppo import Kinetix, which starts JAX's backend: they are
# imported inside the functions, after distributed.initialize.

KIND = 'expert'
RESUME_DIR = 'resume'
# Options a resumed run may change (logdir and run_name name the run
# itself; distributed changes no result).
RESUMABLE_CHANGES = ('num_updates', 'save_every', 'logdir', 'run_name',
                     'distributed')


def _level_groups(num_levels: int, per_group: int) -> list[list[int]]:
  per_group = num_levels if per_group <= 0 else per_group
  return [list(range(i, min(i + per_group, num_levels)))
          for i in range(0, num_levels, per_group)]


def _check_resume(run_dir: str, config) -> bool:
  """Whether run_dir holds an earlier run of `config` to continue."""
  from rtc.common.bc import runs  # pylint: disable=g-import-not-at-top
  if not (os.path.isdir(run_dir) and store.seeds(run_dir)):
    return False
  saved = runs.read_run_config(run_dir)
  if saved is None or 'train' not in saved:
    raise ValueError(
        f'{run_dir} holds expert checkpoints but no config.json to resume '
        'from: choose a new --config.run_name (or remove that directory).')
  old = saved['train']
  new = json.loads(json.dumps(config.to_dict(), sort_keys=True, default=str))
  for key in sorted(set(old) | set(new)):
    if key not in RESUMABLE_CHANGES and old.get(key) != new.get(key):
      raise ValueError(
          f'{run_dir} was trained with other settings ({key}: '
          f'{old.get(key)!r} there, {new.get(key)!r} now): resume with the '
          'same ones (only num_updates and save_every may change) or choose '
          'a new --config.run_name.')
  return True


def _snapshot_path(run_dir: str, units) -> str:
  levels = sorted({l for _, l in units})
  return os.path.join(run_dir, RESUME_DIR,
                      f'levels_{levels[0]}-{levels[-1]}.pkl')


def _save_snapshot(path: str, update: int, runner, shard) -> None:
  """The update number, then the runner's leaves: two pickles in one file,
  so that `_saved_update` reads only the first. The leaves are gathered
  without the padding (all processes call this); process 0 writes."""
  leaves = list(shard.unpad(jax.tree.leaves(runner)))
  if not distributed.is_main():
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  checkpoints.atomic_write_bytes(
      path, pickle.dumps(update, protocol=4) + pickle.dumps(leaves,
                                                           protocol=4))


_SNAPSHOT_ERRORS = (OSError, pickle.UnpicklingError, EOFError, TypeError,
                    ValueError)


def _load_snapshot(path: str, like, shard):
  """(update, runner) from `path`, shaped and placed like `like`."""
  fix = f'delete {path} to train that group again from the start'
  update, leaves = checkpoints.read_pickles(path, 2, fix)
  want, treedef = jax.tree.flatten(like)
  # Snapshots keep the real units; older ones kept the padded unit axis
  # (pads repeat the last unit), which `fit` cuts back.
  n = shard.num_levels
  unpadded = [jax.ShapeDtypeStruct((n,) + b.shape[1:], b.dtype)
              if np.ndim(b) else b for b in want]
  leaves = checkpoints.check_leaves(
      leaves, unpadded, path, "this run's learners", fix,
      fit=lambda x, like: x[:n] if x.ndim else x)
  leaves = [shard.pad(a) for a in leaves]
  return int(update), jax.tree.unflatten(treedef, leaves)


def _saved_update(run_dir: str, units) -> int:
  """The update a group's snapshot holds (0: none; for the progress line)."""
  path = _snapshot_path(run_dir, units)
  try:
    with open(path, 'rb') as f:
      return int(pickle.load(f))
  except FileNotFoundError:
    return 0
  except _SNAPSHOT_ERRORS:
    return 0  # _load_snapshot reports it when the group starts.


# Programs traced in this process, by what they compute: a later train() on
# levels of the same physics and sizes, with the same PPO sizes and devices
# (a resume, a test's next case, another pipeline's experts) reuses the PPO
# trainer and its jitted init/update instead of tracing Kinetix's step again
# (20-50 s on two CPU cores). The level states, learning rate and seeds are
# arguments, not part of the programs. Most recent PROGRAMS_KEPT.
_PROGRAMS = collections.OrderedDict()
PROGRAMS_KEPT = 4


def _program_key(levels, settings, config) -> tuple:
  """What the trainer's programs depend on: the levels' static and
  environment parameters (their states are arguments), PPO sizes,
  observation and network sizes, and the devices."""
  return (levels.static_params, levels.env_params, settings,
          int(config.obs_history), int(config.hidden_dim),
          jax.process_count(), jax.device_count())


def _cached_trainer(key, make):
  """(trainer, {units: (shard, (init, update))}) for `key`, made once."""
  if key not in _PROGRAMS:
    _PROGRAMS[key] = (make(), {})
    while len(_PROGRAMS) > PROGRAMS_KEPT:
      _PROGRAMS.popitem(last=False)
  _PROGRAMS.move_to_end(key)
  return _PROGRAMS[key]


def _sharded(trainer, shard: sharding.LevelSharding):
  """The sharded init and update of `trainer`."""
  init = shard.map(trainer.init, in_axes=(0, 0, None))
  update = shard.map(trainer.update, in_axes=(0, 0), donate_argnums=(0,))
  return init, update


def _interval_stats(sums: dict) -> dict:
  n = sums['episodes']
  safe = np.maximum(n, 1)
  return {
      store.SOLVED: np.where(n > 0, sums['solved'] / safe, 0.0),
      store.RETURNS: np.where(n > 0, sums['returns'] / safe, 0.0),
      store.LENGTHS: np.where(n > 0, sums['lengths'] / safe, 0.0),
      'episodes': n,
  }


def train(config, log: Callable[[str], None] = print) -> str:
  """Trains experts per `config` (configs/expert.py); returns the run dir."""
  distributed.initialize(config.get('distributed'))
  with distributed.guard():
    return _train(config, distributed.main_only(log))


def _train(config, log: Callable[[str], None]) -> str:
  # pylint: disable=g-import-not-at-top
  from rtc.common.env import envs
  from rtc.common.bc import runs
  from rtc.expert import ppo
  # pylint: enable=g-import-not-at-top
  # The binary checks every option first (validate.EXPERT); a library call
  # may pass a NaN learning rate (the run then stops at the first update).
  for name in ('num_seeds', 'num_updates'):
    validate.check_value(name, config[name], validate.EXPERT[name])
  settings = ppo.Settings.from_config(config)
  num_seeds = int(config.num_seeds)
  num_updates = int(config.num_updates)
  # `worlds` (the suite's levels) is found from any directory.
  worlds_dir = paths.resolve_shipped_dir(config.worlds_dir)
  level_ids = envs.parse_levels(config.levels)
  levels = envs.load_levels(level_ids, worlds_dir)
  names = levels.names
  run_name = config.run_name or distributed.shared_value(
      runs.default_run_name)
  run_dir = os.path.join(paths.resolve(config.logdir), run_name)
  resuming = _check_resume(run_dir, config)
  distributed.barrier('rtc expert train: run checked')

  env = envs.BatchedEnv.for_levels(levels, settings.num_envs,
                                   obs_history=int(config.obs_history),
                                   include_prev_action=True)
  level0 = levels.level(0)
  obs_dim = env.obs_dim(level0)
  num_motor = int(levels.static_params.num_motor_bindings)
  agent = agent_lib.ExpertAgent(obs_dim, env.action_dim, num_motor,
                                int(config.hidden_dim))
  # Groups of the same size share one compiled update, and so do later
  # calls on the same levels and sizes (_PROGRAMS).
  trainer, compiled = _cached_trainer(
      _program_key(levels, settings, config),
      lambda: ppo.PPO(agent, env, settings))
  if distributed.is_main():
    runs.write_run_config(run_dir, {
        'kind': KIND, 'levels': list(level_ids), 'worlds_dir': worlds_dir,
        'level_names': list(names), 'obs_dim': obs_dim,
        'plain_obs_dim': env.plain_obs_dim(level0),
        'action_dim': env.action_dim, 'num_motor': num_motor,
        'obs_history': int(config.obs_history),
        'hidden_dim': int(config.hidden_dim), 'num_seeds': num_seeds,
        'train': config.to_dict()})

  groups = _level_groups(len(levels), int(config.parallel_levels))
  steps_per_update = settings.num_envs * settings.num_steps
  total = num_updates * steps_per_update * num_seeds * len(levels)
  done_steps = 0
  if resuming:
    for group in groups:
      units = [(s, l) for s in range(num_seeds) for l in group]
      done_steps += (min(_saved_update(run_dir, units), num_updates)
                     * steps_per_update * len(units))
  bar = progress.Progress(total, 'env steps', 'expert train',
                          initial=done_steps)
  log(f'[expert train] {len(levels)} level(s) x {num_seeds} seed(s): '
      f'{", ".join(names)}; {num_updates} updates of {settings.num_envs} '
      f'envs x {settings.num_steps} steps, shaping {settings.shaping}; run '
      f'dir {run_dir}' + (f'; resuming at {100 * done_steps / total:.0f}%'
                          if resuming else ''))
  writer = (summary.SummaryWriter(os.path.join(run_dir, 'tb'))
            if distributed.is_main() else summary.NullWriter())
  final = {}
  try:
    for group in groups:
      units = [(s, l) for s in range(num_seeds) for l in group]
      if len(units) not in compiled:
        shard = sharding.LevelSharding(len(units))
        compiled[len(units)] = (shard, _sharded(trainer, shard))
      done_steps, group_final = _train_group(
          config, trainer, compiled[len(units)], levels, units, run_dir,
          writer, bar, done_steps, log)
      final.update(group_final)
  finally:
    writer.close()
  for l, name in enumerate(names):
    rates = [final[(s, l)] for s in range(num_seeds)]
    log(f'[expert train] {name}: final solve rate per seed '
        + ' '.join(f'{r:.2f}' for r in rates)
        + f' (mean {np.mean(rates):.2f})')
  log(f'[expert train] done: {run_dir}')
  return run_dir


def _train_group(config, trainer, compiled, levels, units, run_dir: str,
                 writer, bar, done_steps: int, log):
  """Trains the (seed, level index) `units` together; returns final rates."""
  from rtc.expert import ppo  # pylint: disable=g-import-not-at-top
  s = trainer.settings
  names = levels.names
  num_updates = int(config.num_updates)
  save_every = max(int(config.save_every), 1)
  shard, (init, update) = compiled
  base = jax.random.key(int(config.seed))
  keys = np.stack([np.asarray(jax.random.key_data(
      jax.random.fold_in(jax.random.fold_in(base, seed), l)))
                   for seed, l in units])
  level_idx = np.array([l for _, l in units])
  states = shard.pad(jax.tree.map(lambda x: np.asarray(x)[level_idx],
                                  levels.states))
  runner = init(shard.pad(keys), states, float(config.learning_rate))
  steps_per_update = s.num_envs * s.num_steps
  snapshot = _snapshot_path(run_dir, units)
  start = 0
  if os.path.exists(snapshot):
    start, runner = _load_snapshot(snapshot, runner, shard)
    if start >= num_updates:  # Already trained this far.
      final = {(seed, l): store.read_stats(store.stats_path(
          run_dir, seed, start, names[l]))[store.SOLVED] for seed, l in units}
      log(f'[expert train] already trained to update {start}: {snapshot}')
      return done_steps, final
    log(f'[expert train] resuming from update {start} ({snapshot})')
  pending = []
  final = {}
  last_saved = start or None
  t_interval = time.time()
  for u in range(start + 1, num_updates + 1):
    runner, metrics = update(runner, states)
    pending.append(metrics)
    if u % save_every and u != num_updates:
      continue
    metrics = [shard.unpad(m) for m in pending]
    pending = []
    bad = [i for i in range(len(units))
           if not all(bool(m['finite'][i]) for m in metrics)]
    if bad:
      who = ', '.join(f'{names[units[i][1]]} seed {units[i][0]}'
                      for i in bad)
      raise FloatingPointError(
          f'Non-finite loss or parameters by update {u} for {who}; stopped. '
          'Checkpoints already written stay valid (last: '
          f'{last_saved if last_saved is not None else "none"}, under '
          f'{run_dir}). Lower --config.learning_rate or '
          '--config.max_grad_norm and start a new --config.run_name.')
    sums = {k: np.sum([m[k] for m in metrics], axis=0)
            for k in ppo.STAT_KEYS}
    means = {k: np.mean([m[k] for m in metrics], axis=0)
             for k in metrics[0] if k not in ppo.STAT_KEYS and k != 'finite'}
    stats = _interval_stats(sums)
    params = shard.local_values(runner.params)  # This process's units.
    env_steps = u * steps_per_update
    scalars = {}
    for i, (seed, l) in enumerate(units):
      name = names[l]
      unit_stats = {k: float(v[i]) for k, v in stats.items()}
      unit_stats.update(update=u, env_steps=env_steps)
      if i in params:
        store.write_checkpoint(run_dir, seed, u, name, params[i], unit_stats)
      final[(seed, l)] = unit_stats[store.SOLVED]
      tag = f'{name}/seed_{seed}'
      scalars[f'{tag}/solved'] = unit_stats[store.SOLVED]
      scalars[f'{tag}/return'] = unit_stats[store.RETURNS]
      scalars[f'{tag}/length'] = unit_stats[store.LENGTHS]
      scalars[f'{tag}/episodes'] = unit_stats['episodes']
      for k, v in means.items():
        scalars[f'{tag}/{k}'] = float(v[i])
    for l in sorted({l for _, l in units}):
      idx = [i for i, (_, ll) in enumerate(units) if ll == l]
      scalars[f'{names[l]}/mean/solved'] = float(
          np.mean(stats[store.SOLVED][idx]))
    _save_snapshot(snapshot, u, runner, shard)
    last_saved = u
    elapsed = time.time() - t_interval
    t_interval = time.time()
    interval_steps = len(metrics) * steps_per_update * len(units)
    sps = interval_steps / max(elapsed, 1e-9)
    scalars['env_steps_per_second'] = sps
    writer.write(env_steps, scalars)
    done_steps += interval_steps
    per_level = ', '.join(
        f'{names[l]} {scalars[f"{names[l]}/mean/solved"]:.2f}'
        for l in sorted({l for _, l in units}))
    log(bar.line(
        done_steps, f'update {u}/{num_updates}, {sps:,.0f} env steps/s | '
        f'solved {per_level}'))
  return done_steps, final


def _check(config, flag_values):
  del flag_values
  paths.check_writable_dir(paths.resolve(config.logdir), '--config.logdir')


# The binary (rtc.common.cli.cli.Binary); its --config flag is defined only when
# this module runs as a binary, so `train` and rtc.expert.generate_data's
# `generate` can be imported together (e.g. by the quickstart).
BINARY = cli.Binary(
    config_file='expert.py',
    help='Expert training configuration (an ml_collections config file).',
    table=validate.EXPERT, check=_check,
    work=lambda config, flag_values: train(config))

if __name__ == '__main__':
  cli.run(BINARY)
