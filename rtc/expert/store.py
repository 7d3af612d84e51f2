"""Expert run directories: layout, statistics and the choice of checkpoints.

Layout (the earlier Flax implementation's, DESIGN §10):

  <run>/seed_<i>/<update>/policies/<level_name>.pkl   agent parameters
  <run>/seed_<i>/<update>/stats/<level_name>.json     returned_episode_solved,
                                                      ..._returns, ..._lengths
  <run>/data/<level_name>.npz                         data (DESIGN §10)

rtc's own runs add `<run>/config.json` (rtc.common.bc.runs) and `<run>/tb`.
rtc writes a checkpoint's statistics first and its policy second, both
atomically, so a policy file always has its statistics beside it.

Checkpoint choice (`choose_experts`), per level and seed: a checkpoint drawn
uniformly from those whose solve rate (`returned_episode_solved`) is at least
the threshold (0.65); if none reaches it, the best one (ties: the latest),
which is then left out of the mixture. If no seed of a level reaches the
threshold, the mixture would be empty: then the single best checkpoint over
all seeds is used (and the caller says so), so every level still gets data.

Statistics files may hold a number or a list of numbers per key (the mean is
used), as both implementations have written.
"""

import json
import math
import os
from typing import NamedTuple

import numpy as np

from rtc.common.base import paths
from rtc.common.bc import checkpoints

SEED_PREFIX = 'seed_'
SOLVED = 'returned_episode_solved'
RETURNS = 'returned_episode_returns'
LENGTHS = 'returned_episode_lengths'
DEFAULT_THRESHOLD = 0.65


def seed_dir(run_dir: str, seed: int) -> str:
  return os.path.join(run_dir, f'{SEED_PREFIX}{seed}')


def policy_path(run_dir: str, seed: int, update: int, name: str) -> str:
  return os.path.join(seed_dir(run_dir, seed), str(update), 'policies',
                      f'{name}.pkl')


def stats_path(run_dir: str, seed: int, update: int, name: str) -> str:
  return os.path.join(seed_dir(run_dir, seed), str(update), 'stats',
                      f'{name}.json')


def write_checkpoint(run_dir: str, seed: int, update: int, name: str,
                     params, stats: dict) -> None:
  """Statistics, then parameters; each written atomically."""
  data = json.dumps({k: float(v) for k, v in stats.items()}, indent=1,
                    sort_keys=True)
  checkpoints.atomic_write_bytes(stats_path(run_dir, seed, update, name),
                                 data.encode())
  checkpoints.save_params(policy_path(run_dir, seed, update, name), params)


def check_run_dir(run_dir: str) -> None:
  paths.check_not_file(run_dir, '--config.run_path', 'logs-expert/<run>')
  if not os.path.isdir(run_dir):
    raise FileNotFoundError(
        f'Expert run directory {run_dir} does not exist: pass the directory '
        'that `bazel run //rtc/expert:train` wrote (e.g. '
        '--config.run_path=logs-expert/<run>).')


def seeds(run_dir: str) -> list[int]:
  """Seed numbers of `<run>/seed_<i>/`, sorted."""
  check_run_dir(run_dir)
  out = []
  for n in os.listdir(run_dir):
    rest = n[len(SEED_PREFIX):]
    if (n.startswith(SEED_PREFIX) and rest.isdigit() and
        os.path.isdir(os.path.join(run_dir, n))):
      out.append(int(rest))
  return sorted(out)


def updates(run_dir: str, seed: int) -> list[int]:
  d = seed_dir(run_dir, seed)
  return sorted(int(n) for n in os.listdir(d)
                if n.isdigit() and os.path.isdir(os.path.join(d, n)))


def level_names(run_dir: str) -> list[str]:
  """Every level with at least one policy checkpoint in the run."""
  names = set()
  for s in seeds(run_dir):
    for u in updates(run_dir, s):
      pol = os.path.join(seed_dir(run_dir, s), str(u), 'policies')
      if os.path.isdir(pol):
        names.update(f[:-4] for f in os.listdir(pol) if f.endswith('.pkl'))
  if not names:
    raise FileNotFoundError(
        f'{run_dir} holds no expert checkpoints '
        '(seed_<i>/<update>/policies/<level_name>.pkl): train experts first '
        'with `bazel run //rtc/expert:train`, or pass the right '
        '--config.run_path.')
  return sorted(names)


def _number(value, key: str, path: str) -> float:
  try:
    if isinstance(value, (list, tuple)):
      value = np.mean(np.asarray(value, np.float64)) if value else math.nan
    return float(value)
  except (TypeError, ValueError):
    raise ValueError(f'Statistics file {path}: {key} is {value!r}, not a '
                     'number; restore the file or delete its checkpoint '
                     'directory.') from None


def read_stats(path: str) -> dict:
  """{key: float} from a stats JSON; clear errors for missing/corrupt files."""
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Statistics file {path} not found: every policies/<level>.pkl needs '
        'stats/<level>.json beside it to choose experts; restore it or '
        'delete that checkpoint directory.')
  try:
    with open(path) as f:
      raw = json.load(f)
  except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'Statistics file {path} is corrupt ({e}); restore it '
                     'or delete its checkpoint directory.') from None
  if not isinstance(raw, dict) or SOLVED not in raw:
    raise ValueError(f'Statistics file {path} lacks {SOLVED}; restore it or '
                     'delete its checkpoint directory.')
  # The solve rate must be a number; other entries are kept when they are.
  out = {SOLVED: _number(raw[SOLVED], SOLVED, path)}
  for k, v in raw.items():
    if k != SOLVED and isinstance(v, (int, float, list, tuple)):
      try:
        out[k] = _number(v, k, path)
      except ValueError:
        pass
  return out


def solve_rate(stats: dict) -> float:
  value = stats.get(SOLVED, math.nan)
  return -math.inf if value is None or math.isnan(value) else value


def choose_checkpoint(solved: dict, threshold: float,
                      rng: np.random.Generator) -> tuple[int, bool]:
  """(update, whether it met the threshold) from {update: solve rate}."""
  if not solved:
    raise ValueError('No checkpoints to choose from.')
  good = sorted(u for u, r in solved.items() if r >= threshold)
  if good:
    return int(good[rng.integers(len(good))]), True
  best = max(solved, key=lambda u: (solved[u], u))
  return int(best), False


class Choice(NamedTuple):
  seed: int
  update: int
  solved: float
  in_mixture: bool

  def path(self, run_dir: str, name: str) -> str:
    return policy_path(run_dir, self.seed, self.update, name)


def choose_experts(run_dir: str, name: str, threshold: float,
                   rng: np.random.Generator) -> list[Choice]:
  """One Choice per seed that has checkpoints of level `name` (see above).

  At least one Choice has `in_mixture` set.
  """
  choices = []
  for s in seeds(run_dir):
    solved = {}
    for u in updates(run_dir, s):
      if os.path.isfile(policy_path(run_dir, s, u, name)):
        solved[u] = solve_rate(read_stats(stats_path(run_dir, s, u, name)))
    if solved:
      update, met = choose_checkpoint(solved, threshold, rng)
      choices.append(Choice(s, update, solved[update], met))
  if not choices:
    raise FileNotFoundError(
        f'No checkpoints of level {name} in {run_dir} (expected '
        f'seed_<i>/<update>/policies/{name}.pkl): train that level, or drop '
        'it from --config.levels.')
  if not any(c.in_mixture for c in choices):
    best = max(range(len(choices)),
               key=lambda i: (choices[i].solved, -choices[i].seed))
    choices[best] = choices[best]._replace(in_mixture=True)
  return choices
