r"""Solve rate against the DD guidance strength g, to choose its default.

  bazel run //rtc/bench:dd_guidance -- --run_path=quickstart_output/logs-dd/quickstart \
      --guidance=0,10,30,100,300,1000,3000 --delays=1,2,3,4 --num_evals=512

For every delay d (execution horizon s = max(1, d)) and every g, evaluates
the DD `realtime` method (exp schedule) on the run's levels with the shared
rollout, g passed as a traced value (one compilation for the whole sweep),
plus `naive` as the baseline. Prints a table and writes it as CSV
(`--output`). docs/dd_variants.md, "Choosing g" records the sweep behind the default
in configs/dd_eval.py.
"""

import csv
import os

from absl import flags
import jax
import numpy as np

from rtc.bench import timing
from rtc.common.base import options
from rtc.common.base import paths
from rtc.common.base import validate
from rtc.common.bc import checkpoints
from rtc.common.bc import runs
from rtc.common.bc import sharding
from rtc.common.cli import cli
from rtc.common.env import envs
from rtc.common.env import rollout
from rtc.dd import model as dd_model

_RUN_PATH = flags.DEFINE_string('run_path', '', 'DD run directory.')
_STEP = flags.DEFINE_integer('step', -1, 'Epoch (-1 = latest).')
_GUIDANCE = flags.DEFINE_string('guidance', '0,10,30,100,300,1000,3000',
                                'Values of g.')
_DELAYS = flags.DEFINE_string('delays', '1,2,3,4', 'Inference delays.')
_NUM_EVALS = flags.DEFINE_integer('num_evals', 512, 'Episodes per point.')
_NUM_STEPS = flags.DEFINE_integer('num_steps', 5, 'Denoising steps.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
_OUTPUT = flags.DEFINE_string('output', 'dd_guidance.csv', 'CSV to write.')


def main(argv):
  del argv
  validate.check_flags({'step': validate.ANY_INT,
                        'guidance': validate.NON_NEGATIVE,
                        'delays': validate.NON_NEGATIVE_INT,
                        'num_evals': validate.COUNT,
                        'num_steps': validate.COUNT, 'seed': validate.SEED})
  if not _RUN_PATH.value:
    raise ValueError('--run_path is required: a DD run (logs-dd/<run>).')
  run_dir = paths.resolve(_RUN_PATH.value)
  epoch = checkpoints.resolve_epoch(run_dir, _STEP.value)
  info = runs.read_run_config(run_dir)
  if info is None or info.get('kind') != 'dd':
    raise ValueError(f'{run_dir} is not a DD run written by rtc '
                     '(config.json with kind dd).')
  levels = envs.load_levels(info['levels'], info['worlds_dir'])
  policy = dd_model.make_policy(info['model'], info['obs_dim'],
                                info['action_dim'])
  params = runs.load_level_params(run_dir, epoch, levels.names,
                                  policy.param_shapes())
  env = envs.BatchedEnv.for_levels(levels, _NUM_EVALS.value)
  shard = sharding.LevelSharding(len(levels))

  def evaluator(method_name):
    def one_level(params, key_data, level, delay, horizon, g):
      method = rollout.Method(method_name, max_guidance_weight=g)
      return rollout.rollout(policy, env, method, _NUM_STEPS.value, params,
                             None, jax.random.wrap_key_data(key_data), level,
                             delay, horizon)
    return shard.map(one_level, in_axes=(0, 0, 0, None, None, None))

  keys = jax.random.split(jax.random.key(_SEED.value), len(levels))
  args = (shard.pad(params), shard.pad(np.asarray(jax.random.key_data(keys))),
          shard.pad(levels.states))
  realtime, naive = evaluator('realtime'), evaluator('naive')
  gs = [float(g) for g in options.str_list(_GUIDANCE.value)]
  delays = options.int_list(_DELAYS.value, 'delays')
  rows = []
  for d in delays:
    s = max(1, d)
    base = shard.unpad(naive(*args, d, s, 0.0))
    row = {'delay': d, 'execute_horizon': s,
           'naive': float(np.mean(base['returned_episode_solved']))}
    for g in gs:
      out = shard.unpad(realtime(*args, d, s, g))
      row[f'g={g:g}'] = float(np.mean(out['returned_episode_solved']))
      print(f'd={d} s={s} g={g:g}: solved {row[f"g={g:g}"]:.3f} '
            f'(naive {row["naive"]:.3f})', flush=True)
    rows.append(row)
  header = list(rows[0])
  print(timing.table([[f'{r[k]:.3f}' if isinstance(r[k], float) else r[k]
                       for k in header] for r in rows], header))
  out = paths.resolve(_OUTPUT.value)
  os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
  with open(out, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=header)
    w.writeheader()
    w.writerows(rows)
  print(f'{_NUM_EVALS.value} episodes per point; wrote {out}')


if __name__ == '__main__':
  cli.run(main)
