"""One rollout program per sweep gives the rows of one program per method.

  bazel run //rtc/bench:sweep_program -- --kind=flow --preset= \
      --methods=naive,realtime,bid,hard_masking

A random-weight policy of `--kind` (configs/<kind>.py preset `--preset`,
the quickstart's backbone) on one packaged level is evaluated twice: one
sweep of every method (one program, the methods its `lax.switch`
branches: rtc.common.env.rollout.next_chunk_of) and one sweep per method.
Prints each row of both and whether every column is equal; exit status 1
if any differs (DESIGN §9).
"""

import csv
import dataclasses
import os
import sys
import tempfile

from absl import flags
import jax
import numpy as np

from configs import quickstart as quickstart_config
from rtc.common.base import cache
from rtc.common.base import options
from rtc.common.base import validate
from rtc.common.bc import evaluate
from rtc.common.bc import runs
from rtc.common.cli import cli
from rtc.common.core import registry
from rtc.common.env import envs
from rtc.common.env import rollout

_KIND = flags.DEFINE_string('kind', 'flow', 'Policy family.')
_PRESET = flags.DEFINE_string('preset', '', 'Preset of configs/<kind>.py '
                              '(e.g. masked).')
_METHODS = flags.DEFINE_string('methods', 'naive,realtime,bid,hard_masking',
                               'Methods of the sweep.')
_LEVEL = flags.DEFINE_string('level', 's/h0_weak_thrust', 'Packaged level.')
_NUM_EVALS = flags.DEFINE_integer('num_evals', 8, 'Episodes per point.')
_DELAYS = flags.DEFINE_string('delays', '0,2,3', 'Delays (s = max(1, d)).')


def make_run(root: str, kind: str, preset: str, level: str) -> str:
  """<root>/run: config.json and a random policy for `level`."""
  level_id = level if level.endswith('.json') else level + '.json'
  levels = envs.load_levels([level_id])
  env = envs.BatchedEnv.for_levels(levels, 1)
  model = registry.get_config(kind, preset).model.to_dict()
  model.update({k: v for k, v in quickstart_config.SMALL_BACKBONE.items()
                if k in model})
  obs_dim = env.plain_obs_dim(levels.level(0))
  policy = registry.make_policy(kind)(model, obs_dim, env.action_dim)
  run_dir = os.path.join(root, 'run')
  runs.write_run_config(run_dir, {
      'kind': kind, 'levels': [level_id], 'worlds_dir': '',
      'level_names': list(levels.names), 'obs_dim': obs_dim,
      'action_dim': env.action_dim,
      'model': dataclasses.asdict(policy.config)})
  params = jax.tree.map(lambda x: np.asarray(x)[None],
                        policy.init(jax.random.key(0)))
  runs.save_level_params(run_dir, 0, list(levels.names), params)
  return run_dir


def sweep(run_dir: str, kind: str, methods: str, out: str) -> dict:
  c = registry.get_config(kind, evaluation=True)
  c.num_evals = _NUM_EVALS.value
  c.delays = _DELAYS.value
  c.execute_horizons = 'min'
  c.methods = methods
  path = evaluate.evaluate(c, run_dir, out, None, kind, log=lambda _: None)
  with open(path, newline='') as f:
    return {(r['method'], r['delay']): r for r in csv.DictReader(f)}


def main(argv):
  del argv
  validate.check_flags({'num_evals': validate.Rule(int, lo=1)})
  methods = options.str_list(_METHODS.value)
  for m in methods:
    rollout.Method(m)  # One error line for an unknown method.
  cache.enable_compilation_cache()
  root = tempfile.mkdtemp()
  run_dir = make_run(root, _KIND.value, _PRESET.value, _LEVEL.value)
  together = sweep(run_dir, _KIND.value, ','.join(methods),
                   os.path.join(root, 'together'))
  apart = {}
  for m in methods:
    apart.update(sweep(run_dir, _KIND.value, m, os.path.join(root, m)))
  print(f'{_KIND.value} {_PRESET.value or "(default)"} on {_LEVEL.value}, '
        f'{_NUM_EVALS.value} episodes, delays {_DELAYS.value}')
  differ = sorted(k for k in together if together[k] != apart.get(k))
  for k in sorted(together):
    t = together[k]
    note = '  DIFFERS from one program per method' if k in differ else ''
    print(f'{k[0]} d={k[1]}: solved {t["returned_episode_solved"]} return '
          f'{t["returned_episode_returns"]} length '
          f'{t["returned_episode_lengths"]}{note}')
  print(f'{len(together)} rows; every column equal to one program per '
        f'method: {not differ and together.keys() == apart.keys()}')
  if differ or together.keys() != apart.keys():
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
