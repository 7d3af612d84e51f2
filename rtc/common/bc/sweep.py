"""The evaluation sweep over delays, execution horizons, methods (DESIGN §9).

For every (delay d, execution horizon s, method) all levels are evaluated at
once (vmapped, sharded over devices) and their rows appended to
`<output_dir>/results.csv`, with columns

  returned_episode_returns, returned_episode_lengths, returned_episode_solved,
  delay, method, level, execute_horizon

(the earlier implementation's format; `level` is `worlds/<level id>`); a
cost-adjusted sweep (`SweepSpec.ratios`, rtc.common.bc.cost) adds `d0` and
`latency_ratio`, and runs each method at its own d for each d0. The
file is rewritten atomically after each point, and a re-run with the same
output directory skips the points whose rows are all there, so an interrupted
sweep resumes where it stopped.

In a job of several processes (rtc.common.bc.distributed) every process reads
results.csv and runs its own levels; the rows are gathered and process 0
alone writes the file and prints progress.
"""

import collections
import csv
import dataclasses
import io
import os
import time
from typing import Callable, Optional, Sequence

import jax
import numpy as np

from rtc.common.base import progress
from rtc.common.base import validate
from rtc.common.bc import checkpoints
from rtc.common.bc import columns
from rtc.common.bc import cost
from rtc.common.bc import distributed
from rtc.common.bc import sharding
from rtc.common.env import envs
from rtc.common.env import rollout

COLUMNS = columns.COLUMNS
METRICS = columns.METRICS


def level_column(level_id: str) -> str:
  return 'worlds/' + level_id


MIN_HORIZON = 'min'


def sweep_points(delays: Sequence[int], chunk_size: int,
                 execute_horizons=None):
  """(d, s) pairs with s in [max(1, d), H - d].

  `execute_horizons`: None for every such s, a sequence for a subset, or
  'min' for s = max(1, d) only (the shortest horizon each delay allows).
  """
  points = []
  for d in delays:
    if d < 0 or 2 * d > chunk_size:
      raise ValueError(f'Delay {d} is out of range for H={chunk_size} '
                       f'(need 0 <= d <= H/2).')
    for s in range(max(1, d), chunk_size - d + 1):
      if execute_horizons == MIN_HORIZON:
        if s == max(1, d):
          points.append((d, s))
      elif execute_horizons is None or s in execute_horizons:
        points.append((d, s))
  if not points:
    raise ValueError(f'No (delay, execute_horizon) pairs in delays {delays} '
                     f'x horizons {execute_horizons} for H={chunk_size}.')
  return points


class ResultsFile:
  """results.csv, read on open and rewritten atomically on every append."""

  def __init__(self, path: str):
    self.path = path
    self.rows = []
    if os.path.exists(path):
      with open(path, newline='') as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
          raise ValueError(
              f'{path} lacks columns {sorted(missing)}: it is not an rtc '
              'results file; choose another --output_dir or remove it.')
        self.rows = list(reader)

  def has(self, level: str, delay: int, execute_horizon: int,
          method: str, d0: Optional[int] = None) -> bool:
    """Whether a row is there (`d0`: of a cost-adjusted sweep)."""
    return any(r['level'] == level and int(r['delay']) == delay and
               int(r['execute_horizon']) == execute_horizon and
               r['method'] == method and
               (d0 is None or r.get('d0') == str(d0)) for r in self.rows)

  def append(self, rows) -> None:
    """Adds rows; process 0 of a job rewrites the file."""
    columns = COLUMNS + cost.RESULT_COLUMNS
    self.rows.extend({k: str(r[k]) for k in columns if k in r} for r in rows)
    if not distributed.is_main():
      return
    buf = io.StringIO()
    extra = any(r.get('d0') not in (None, '') for r in self.rows)
    writer = csv.DictWriter(buf, fieldnames=columns if extra else COLUMNS,
                            restval='')
    writer.writeheader()
    writer.writerows(self.rows)
    checkpoints.atomic_write_bytes(self.path, buf.getvalue().encode())


@dataclasses.dataclass
class SweepSpec:
  methods: Sequence[rollout.Method]
  delays: Sequence[int]
  execute_horizons: Optional[Sequence[int]]
  num_evals: int
  num_steps: int
  seed: int = 0
  legacy_episode_end: bool = False  # rtc.common.env.legacy_engine's scoring.
  # Cost-adjusted sweep: {method name: latency / flow naive's latency};
  # `delays` are then d0 (rtc.common.bc.cost.plan).
  ratios: Optional[dict] = None

  def __post_init__(self):
    check_counts(self.num_evals, self.num_steps)

  def points(self, chunk_size: int) -> list:
    """[(method, d, s, extra row fields)] of the sweep."""
    if self.ratios is None:
      return [(m, d, s, {}) for m in self.methods for d, s in sweep_points(
          self.delays, chunk_size, self.execute_horizons)]
    sweep_points(self.delays, chunk_size, MIN_HORIZON)  # d0's range.
    by_name = {m.name: m for m in self.methods}
    plan = cost.plan(self.delays, {m.name: self.ratios[m.name]
                                   for m in self.methods}, chunk_size)
    return [(by_name[name], d, s,
             {'d0': d0, 'latency_ratio': f'{self.ratios[name]:.4g}'})
            for name, points in plan.items() for d0, d, s in points]


def check_counts(num_evals: int, num_steps: int, prefix: str = '') -> None:
  """Episodes per point and sampling steps must be >= 1 (`prefix`: where
  the options live in the config, e.g. 'eval.'); rules of rtc.common.base.validate.
  """
  validate.check_value('num_evals', num_evals, validate.SWEEP['num_evals'],
                       prefix=prefix)
  validate.check_value('num_flow_steps', num_steps,
                       validate.SWEEP['num_flow_steps'], prefix=prefix)


# Evaluators made in this process, by what their program computes: a later
# evaluation of an equal policy on levels of the same physics and sizes (a
# resumed sweep, the next evaluation of a pipeline, a test's next case)
# reuses the jitted function instead of tracing Kinetix's step again (20-30 s
# on two CPU cores). Level states, parameters and keys are its arguments.
_EVALUATORS = collections.OrderedDict()
EVALUATORS_KEPT = 8


def make_evaluator(policy, levels: envs.Levels, method, num_evals: int,
                   num_steps: int, shard: sharding.LevelSharding,
                   legacy_episode_end: bool = False) -> Callable:
  """A compiled (params, weak, keys, states, d, s) -> metrics over levels.

  `method`: an rtc.common.env.rollout.Method; or a tuple (or list) of them,
  and the function takes a last argument, the index of the method to run (one
  program for every method of a sweep: the physics compiles once).
  """
  methods = tuple(method) if isinstance(method, (tuple, list)) else method
  key = None
  if hasattr(policy, 'program_key'):  # A ChunkPolicy.
    key = (policy.program_key(), levels.static_params, levels.env_params,
           methods, int(num_evals), int(num_steps), shard.num_levels,
           tuple(shard.devices), bool(legacy_episode_end))
    try:
      hash(key)
    except TypeError:  # A family whose options are not hashable: no reuse.
      key = None
  if key is None:
    return _make_evaluator(policy, levels, methods, num_evals, num_steps,
                           shard, legacy_episode_end)
  if key not in _EVALUATORS:
    _EVALUATORS[key] = _make_evaluator(policy, levels, methods, num_evals,
                                       num_steps, shard, legacy_episode_end)
    while len(_EVALUATORS) > EVALUATORS_KEPT:
      _EVALUATORS.popitem(last=False)
  _EVALUATORS.move_to_end(key)
  return _EVALUATORS[key]


def _make_evaluator(policy, levels, method, num_evals, num_steps, shard,
                    legacy_episode_end):
  env = envs.BatchedEnv.for_levels(levels, num_evals,
                                   legacy_episode_end=legacy_episode_end)

  def one_level(params, weak_params, key_data, level, delay,
                execute_horizon, method_index=0):
    key = jax.random.wrap_key_data(key_data)
    return rollout.rollout(policy, env, method, num_steps, params,
                           weak_params, key, level, delay, execute_horizon,
                           method_index=method_index)

  if isinstance(method, tuple):
    return shard.map(one_level, in_axes=(0, 0, 0, 0, None, None, None))
  return shard.map(one_level, in_axes=(0, 0, 0, 0, None, None))


class EpochEvaluator:
  """Solve rate of every level at a few execution horizons (naive, d = 0),
  with the sweep's evaluator: the training loop's check after each epoch
  (rtc.common.bc.train, `config.eval.execute_horizons`)."""

  def __init__(self, policy, levels, shard, horizons, num_evals: int,
               num_steps: int, seed: int):
    self.horizons = horizons
    self.names = levels.names
    self.shard = shard
    # A sweep's form (a tuple of methods, the index an argument), so a
    # later naive-only sweep of the same sizes runs this same program.
    self._fn = make_evaluator(policy, levels, (rollout.Method('naive'),),
                              num_evals, num_steps, shard)
    keys = jax.random.split(jax.random.key(seed), len(levels))
    self._keys = shard.pad(np.asarray(jax.random.key_data(keys)))
    self._states = shard.pad(levels.states)

  def __call__(self, params_padded) -> dict:
    out = {}
    for s in self.horizons:
      m = self.shard.unpad(self._fn(params_padded, params_padded, self._keys,
                                    self._states, 0, s, 0))
      for i, name in enumerate(self.names):
        out[f'eval/{name}/solved_s{s}'] = float(
            m['returned_episode_solved'][i])
        out[f'eval/{name}/return_s{s}'] = float(
            m['returned_episode_returns'][i])
      out[f'eval/mean/solved_s{s}'] = float(
          np.mean(m['returned_episode_solved']))
    return out


def check_spec(spec: SweepSpec, chunk_size: int, has_weak: bool) -> list:
  """The sweep's (method, d, s, extra row fields) points; ValueError for a spec the policy cannot
  run. Callers check before writing anything."""
  points = spec.points(chunk_size)
  for m in spec.methods:
    if m.uses_weak_policy and not has_weak:
      raise ValueError('BID with bid_k needs a weak policy: set '
                       '--config.weak_step.')
  return points


def run_sweep(policy, levels: envs.Levels, params, spec: SweepSpec,
              output_dir: str, weak_params=None, label: str = 'eval',
              log: Callable[[str], None] = print) -> str:
  """Evaluates every point of `spec` not yet in `output_dir/results.csv`.

  `params` (and `weak_params`) carry a leading level axis in `levels` order.
  """
  points = check_spec(spec, policy.chunk_size, weak_params is not None)
  os.makedirs(output_dir, exist_ok=True)
  log = distributed.main_only(log)
  results = ResultsFile(os.path.join(output_dir, 'results.csv'))
  # Nobody writes results.csv before every process has read it.
  distributed.barrier('rtc sweep: results read')
  level_cols = [level_column(i) for i in levels.ids]
  todo = [(m, d, s, x) for m, d, s, x in points
          if not all(results.has(c, d, s, m.name, x.get('d0'))
                     for c in level_cols)]
  total = len(points)
  if not todo:
    log(f'[{label}] all {total} points already in {results.path}')
    return results.path
  if len(todo) < total:
    log(f'[{label}] resuming: {total - len(todo)} of {total} points already '
        f'in {results.path}')
  shard = sharding.LevelSharding(len(levels))
  params_p = shard.pad(params)
  weak_p = shard.pad(weak_params) if weak_params is not None else params_p
  keys = jax.random.split(jax.random.key(spec.seed), len(levels))
  keys_p = shard.pad(jax.random.key_data(keys))
  states_p = shard.pad(levels.states)
  bar = progress.Progress(len(todo), 'points', label)
  # One program for every method of the sweep (not only those left, so a
  # resumed sweep runs the program it ran before).
  methods = tuple(dict.fromkeys(m for m, _, _, _ in points))
  evaluate = make_evaluator(policy, levels, methods, spec.num_evals,
                            spec.num_steps, shard, spec.legacy_episode_end)
  outputs = {}  # Cost-adjusted d0s may share a (method, d, s).
  for n, (method, d, s, extra) in enumerate(todo):
    rollout.check_delay_horizon(d, s, policy.chunk_size)
    t0 = time.time()
    if (method, d, s) not in outputs:
      outputs[(method, d, s)] = shard.unpad(evaluate(
          params_p, weak_p, keys_p, states_p, d, s, methods.index(method)))
    out = outputs[(method, d, s)]
    rows = []
    for i, col in enumerate(level_cols):
      row = {k: float(out[k][i]) for k in METRICS}
      row.update(delay=d, method=method.name, level=col, execute_horizon=s,
                 **extra)
      rows.append(row)
    results.append(rows)
    solved = float(np.mean(out['returned_episode_solved']))
    at = f'd0={extra["d0"]} ' if extra else ''
    log(bar.line(n + 1, f'{method.name} {at}d={d} s={s}: solved '
                      f'{solved:.3f} (mean over {len(levels)} level(s)) in '
                      f'{time.time() - t0:.1f}s'))
  return results.path
