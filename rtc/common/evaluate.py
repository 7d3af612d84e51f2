"""The evaluation binary's logic, shared by every policy kind.

`evaluate(config, run_path, output_dir, make_policy, kind)` loads the
policies of one epoch of a behaviour-cloning run (rtc's own or the earlier
implementation's directory layout) and runs the SPEC §5 sweep
(rtc.common.sweep) into `<output_dir>/results.csv`, resumably.
"""

import os
from typing import Callable

from rtc.common import checkpoints
from rtc.common import envs
from rtc.common import options
from rtc.common import paths
from rtc.common import rollout
from rtc.common import runs
from rtc.common import sweep


def methods_from_config(config, simulated_delay) -> list[rollout.Method]:
  names = options.str_list(config.methods)
  if simulated_delay is not None and 'training_time' not in names:
    names.append('training_time')
  if not names:
    raise ValueError('--config.methods is empty.')
  out = []
  for name in names:
    out.append(rollout.Method(
        name, schedule=config.realtime.schedule,
        max_guidance_weight=float(config.realtime.max_guidance_weight),
        n_samples=int(config.bid.n_samples), bid_k=config.bid.bid_k))
  return out


def evaluate(config, run_path: str, output_dir: str, make_policy: Callable,
             kind: str, log: Callable[[str], None] = print) -> str:
  if not run_path:
    raise ValueError('--run_path is required: a training run directory, e.g. '
                     f'logs-{kind}/<run_name>.')
  run_dir = paths.resolve(run_path)
  epoch = checkpoints.resolve_epoch(run_dir, int(config.step))
  run_cfg = runs.read_run_config(run_dir)
  if run_cfg is not None:
    if run_cfg.get('kind', kind) != kind:
      raise ValueError(f'{run_dir} holds {run_cfg["kind"]} policies; use '
                       f'//rtc/{run_cfg["kind"]}:eval for it.')
    level_ids = tuple(run_cfg['levels'])
    worlds_dir = paths.resolve(config.worlds_dir) or run_cfg['worlds_dir']
    model = dict(run_cfg['model'])
  else:
    worlds_dir = paths.resolve(config.worlds_dir)
    names = runs.policy_level_names(run_dir, epoch)
    level_ids = runs.level_ids_for_names(names, worlds_dir)
    model = config.model.to_dict()
  if config.levels:
    wanted = envs.parse_levels(config.levels)
    unknown = [l for l in wanted if l not in level_ids]
    if unknown:
      raise ValueError(f'Levels {unknown} are not in {run_dir} (has '
                       f'{list(level_ids)}).')
    level_ids = wanted
  levels = envs.load_levels(level_ids, worlds_dir)
  env = envs.BatchedEnv.for_levels(levels, 1)
  policy = make_policy(model, env.plain_obs_dim(levels.level(0)),
                       env.action_dim)
  shapes = policy.param_shapes()
  params = runs.load_level_params(run_dir, epoch, levels.names, shapes)
  weak = None
  if config.weak_step is not None:
    weak_epoch = checkpoints.resolve_epoch(run_dir, int(config.weak_step))
    weak = runs.load_level_params(run_dir, weak_epoch, levels.names, shapes)
  spec = sweep.SweepSpec(
      methods=methods_from_config(config, policy.config.simulated_delay),
      delays=options.int_list(config.delays, 'delays'),
      execute_horizons=(
          sweep.MIN_HORIZON if config.execute_horizons == sweep.MIN_HORIZON
          else options.int_list(config.execute_horizons, 'execute_horizons')
          or None),
      num_evals=int(config.num_evals), num_steps=int(config.num_flow_steps),
      seed=int(config.seed))
  output_dir = paths.resolve(output_dir)
  log(f'[{kind} eval] {run_dir} epoch {epoch}, {len(levels)} level(s), '
      f'{config.num_evals} episodes per point -> {output_dir}')
  return sweep.run_sweep(policy, levels, params, spec, output_dir,
                         weak_params=weak, label=f'{kind} eval', log=log)
