"""Run directories: their config.json, level lookup and per-level parameters.

A behaviour-cloning run `<logdir>/<run_name>/` holds `config.json` (what was
trained: kind, levels, worlds directory, model options, sizes) and one
directory per epoch, `<epoch>/policies/<level_name>.pkl`. Directories written
by the earlier implementation have no config.json; their levels are found by
matching the checkpoint (or data) file names against the level files of the
worlds directory.
"""

import datetime
import json
import os

import jax
import numpy as np

from rtc.common.bc import checkpoints
from rtc.common.env import envs

CONFIG_FILE = 'config.json'


def default_run_name() -> str:
  return datetime.datetime.now().strftime('%Y%m%d-%H%M%S')


def write_run_config(run_dir: str, info: dict) -> None:
  os.makedirs(run_dir, exist_ok=True)
  data = json.dumps(info, indent=2, sort_keys=True, default=str)
  checkpoints.atomic_write_bytes(os.path.join(run_dir, CONFIG_FILE),
                                 data.encode())


def read_run_config(run_dir: str) -> dict | None:
  path = os.path.join(run_dir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f'{path} is corrupt ({e}); restore it or remove it to '
                     'treat the run as a reference-format directory.') \
        from None


def level_ids_for_names(names, worlds_dir: str | None) -> tuple[str, ...]:
  """Level ids whose `level_name` equals each of `names`, from worlds_dir."""
  root = envs.resolve_worlds_dir(worlds_dir)
  by_name = {}
  for dirpath, _, files in os.walk(root):
    for f in files:
      if f.endswith('.json'):
        rel = os.path.relpath(os.path.join(dirpath, f), root)
        by_name.setdefault(envs.level_name(rel), rel)
  ids = []
  for name in names:
    if name not in by_name:
      raise FileNotFoundError(
          f'No level file in {root} is named {name}: set --config.worlds_dir '
          'to the folder its level came from (e.g. the earlier '
          'implementation\'s worlds/ for the paper levels), or '
          'list the levels with --config.levels.')
    ids.append(by_name[name])
  return tuple(ids)


def data_level_names(run_path: str) -> list[str]:
  data_dir = os.path.join(run_path, 'data')
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(
        f'{data_dir} does not exist: --config.run_path must be an expert run '
        'holding data/<level_name>.npz (make one with '
        '`bazel run //rtc/expert:generate_data`).')
  names = sorted(f[:-4] for f in os.listdir(data_dir) if f.endswith('.npz'))
  if not names:
    raise FileNotFoundError(f'{data_dir} holds no .npz datasets.')
  return names


def data_level_ids(run_path: str, worlds_dir: str | None) -> tuple[str, ...]:
  """The level ids of an expert run's datasets (data/<level_name>.npz)."""
  return level_ids_for_names(data_level_names(run_path), worlds_dir)


def policy_level_names(run_dir: str, epoch: int) -> list[str]:
  pol = os.path.join(run_dir, str(epoch), 'policies')
  if not os.path.isdir(pol):
    raise FileNotFoundError(f'{pol} does not exist: no policies for epoch '
                            f'{epoch} in {run_dir}.')
  return sorted(f[:-4] for f in os.listdir(pol) if f.endswith('.pkl'))


def load_level_params(run_dir: str, epoch: int, names, expected):
  """Stacks `<run>/<epoch>/policies/<name>.pkl` for `names`: [L, ...]."""
  trees = [checkpoints.load_checked(
      checkpoints.policy_path(run_dir, epoch, n), expected) for n in names]
  return jax.tree.map(lambda *x: np.stack(x), *trees)


def save_level_params(run_dir: str, epoch: int, names, params) -> None:
  """Writes each level's slice of `params` [L, ...] atomically."""
  params = checkpoints.to_numpy(params)
  for i, name in enumerate(names):
    checkpoints.save_params(checkpoints.policy_path(run_dir, epoch, name),
                            jax.tree.map(lambda x, i=i: x[i], params))


# Where expert runs are written: configs/expert.py's logdir, and the
# quickstart's (its default --output_dir), relative to the user's directory.
EXPERT_LOGDIR = 'logs-expert'
QUICKSTART_EXPERT_RUN = os.path.join('quickstart_output', 'logs-expert',
                                     'quickstart')
MAKE_EXPERT_DATA = (
    '`bazel run //rtc:quickstart`, or `bazel run //rtc/expert:train -- '
    '--config=configs/expert.py:cpu --config.run_name=cpu` then `bazel run '
    '//rtc/expert:generate_data -- --config=configs/data.py:cpu '
    '--config.run_path=logs-expert/cpu`')


def has_data(run_dir: str) -> bool:
  """Whether run_dir/data holds a finished dataset (<level_name>.npz)."""
  data_dir = os.path.join(run_dir, 'data')
  return os.path.isdir(data_dir) and any(
      f.endswith('.npz') and not f.startswith('.')
      for f in os.listdir(data_dir))


def expert_runs_with_data(base: str) -> list[str]:
  """The expert runs with data where rtc writes them, relative to base:
  logs-expert/<run> and the quickstart's."""
  found = []
  logdir = os.path.join(base, EXPERT_LOGDIR)
  if os.path.isdir(logdir):
    found += [os.path.join(EXPERT_LOGDIR, r) for r in sorted(
        os.listdir(logdir)) if has_data(os.path.join(logdir, r))]
  if has_data(os.path.join(base, QUICKSTART_EXPERT_RUN)):
    found.append(QUICKSTART_EXPERT_RUN)
  return found


def default_expert_run(base: str) -> str:
  """The only expert run with data under `base` (relative to it), for an
  empty --config.run_path; ValueError naming what to do otherwise."""
  found = expert_runs_with_data(base)
  if len(found) == 1:
    return found[0]
  if found:
    raise ValueError(
        f'--config.run_path is required: {len(found)} expert runs with data '
        f'are here ({", ".join(found)}); pick one, e.g. '
        f'--config.run_path={found[0]}.')
  raise ValueError(
      '--config.run_path is required, and no expert run with data is in '
      f'{EXPERT_LOGDIR}/<run> or {QUICKSTART_EXPERT_RUN} under {base}: make '
      f'one with {MAKE_EXPERT_DATA}, or pass --config.run_path=<expert run>.')
