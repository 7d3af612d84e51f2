"""The evaluation binary's logic, shared by every policy kind.

`evaluate(config, run_path, output_dir, make_policy, kind)` loads the
policies of one epoch of a behaviour-cloning run (rtc's own or the earlier
implementation's directory layout) and runs the evaluation sweep
(DESIGN §9; rtc.common.bc.sweep) into
`<output_dir>/results.csv`, resumably. `make_policy` None takes `kind`'s
from rtc.common.core.registry.

The model options come from the run's config.json (`--config.model` only
for directories without one), except its family's sampling options
(SAMPLING_OPTIONS, rtc.common.core.registry), which `--config.<option>`
overrides. The settings that change results (run, epoch, episodes, steps, seed, methods' parameters,
model) are kept in `<output_dir>/eval_settings.json`: resuming into a
directory evaluated with other settings is an error, not a mix of rows.

`--config.cost_adjusted=True` runs each method at the delay its own latency
causes (rtc.common.bc.cost; docs/cost_adjusted.md).

`--config.distributed.*` runs the sweep as one job of several processes
(rtc.common.bc.distributed): every process reads the run's config.json and the
evaluated epoch's policies, evaluates the levels its devices hold, and
process 0 writes eval_settings.json and results.csv.
"""

import json
import os
from typing import Callable, Optional

from rtc.common.base import options
from rtc.common.base import paths
from rtc.common.bc import checkpoints
from rtc.common.bc import cost
from rtc.common.bc import distributed
from rtc.common.core import registry

# envs, rollout, runs and sweep import Kinetix, which starts JAX's backend:
# they are imported inside the functions, after distributed.initialize.

SETTINGS_FILE = 'eval_settings.json'


def methods_from_config(config, simulated_delay) -> list:
  """The sweep's rollout.Method list."""
  # pylint: disable=g-import-not-at-top
  from rtc.common.env import rollout
  # pylint: enable=g-import-not-at-top
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


def evaluate(config, run_path: str, output_dir: str,
             make_policy: Optional[Callable], kind: str,
             log: Callable[[str], None] = print) -> str:
  """Runs the sweep of `run_path` into `output_dir`; returns results.csv."""
  distributed.initialize(config.get('distributed'))
  with distributed.guard():
    return _evaluate(config, run_path, output_dir, make_policy, kind,
                     distributed.main_only(log))


def _evaluate(config, run_path, output_dir, make_policy, kind, log):
  # pylint: disable=g-import-not-at-top
  from rtc.common.env import envs
  from rtc.common.bc import runs
  from rtc.common.bc import sweep
  # pylint: enable=g-import-not-at-top
  if not run_path:
    raise ValueError('--run_path is required: a training run directory, e.g. '
                     f'logs-{kind}/<run_name>.')
  cost.check_options(config)
  make_policy = make_policy or registry.make_policy(kind)
  run_dir = paths.resolve(run_path)
  paths.check_not_file(run_dir, '--run_path', f'logs-{kind}/<run>')
  epoch = checkpoints.resolve_epoch(run_dir, int(config.step))
  run_cfg = runs.read_run_config(run_dir)
  if run_cfg is not None:
    if run_cfg.get('kind', kind) != kind:
      raise ValueError(f'{run_dir} holds {run_cfg["kind"]} policies; use '
                       f'//rtc/{run_cfg["kind"]}:eval for it.')
    level_ids = tuple(run_cfg['levels'])
    worlds_dir = paths.resolve(config.worlds_dir) or run_cfg['worlds_dir']
    model = dict(run_cfg['model'])
    log(f'[{kind} eval] model options from {run_dir}/config.json '
        '(--config.model.* applies only to directories without one)')
  else:
    worlds_dir = paths.resolve(config.worlds_dir)
    names = runs.policy_level_names(run_dir, epoch)
    level_ids = runs.level_ids_for_names(names, worlds_dir)
    model = config.model.to_dict()
  for option in registry.sampling_options(kind):
    value = config.get(option)
    if value is not None:
      model[option] = value
  if config.levels:
    wanted = envs.parse_levels(config.levels)
    unknown = [l for l in wanted if l not in level_ids]
    if unknown:
      raise ValueError(f'Levels {unknown} are not in {run_dir} (has '
                       f'{list(level_ids)}).')
    level_ids, run_levels = wanted, level_ids
  else:
    run_levels = level_ids
  # Padded like the run's levels (s/ with m/), so observations fit it.
  levels = envs.load_levels(level_ids, worlds_dir, pad_like=run_levels)
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
      seed=int(config.seed),
      legacy_episode_end=bool(config.get('legacy_episode_end', False)))
  # Every check before anything is written (eval_settings.json).
  sweep.check_spec(spec, policy.chunk_size, weak is not None)
  output_dir = paths.resolve(output_dir)
  costs = None
  if config.get('cost_adjusted'):  # Reads and checks a latency CSV.
    from rtc.common.bc import latency  # pylint: disable=g-import-not-at-top
    costs = latency.EvalCosts(config, output_dir, run_dir, kind, policy,
                              model, spec.methods, spec.num_steps)
  settings = {
      'run_dir': run_dir, 'epoch': epoch,
      'weak_epoch': None if weak is None else weak_epoch,
      'worlds_dir': worlds_dir, 'num_evals': int(config.num_evals),
      'num_flow_steps': int(config.num_flow_steps), 'seed': int(config.seed),
      'realtime': config.realtime.to_dict(), 'bid': config.bid.to_dict(),
      'model': model,
      # Recorded only when set, so directories from before it still resume.
      **({'legacy_episode_end': True} if spec.legacy_episode_end else {})}
  if costs is not None:
    settings['cost_adjusted'] = costs.settings
  check_settings(output_dir, settings)
  if costs is not None:
    spec.ratios = costs.ratios(first_level(params), log)
  log(f'[{kind} eval] {run_dir} epoch {epoch}, {len(levels)} level(s), '
      f'{config.num_evals} episodes per point -> {output_dir}')
  return sweep.run_sweep(policy, levels, params, spec, output_dir,
                         weak_params=weak, label=f'{kind} eval', log=log)


def first_level(params):
  """The first level's slice of stacked [L, ...] parameters."""
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.map(lambda x: x[0], params)


def check_settings(output_dir: str, settings: dict) -> None:
  """Records `settings` in output_dir, or raises if it holds others."""
  path = os.path.join(output_dir, SETTINGS_FILE)
  settings = json.loads(json.dumps(settings, sort_keys=True))
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise ValueError(f'{path} is unreadable ({e}); delete it to evaluate '
                       'into this directory again.') from None
    changed = [k for k in sorted(set(old) | set(settings))
               if old.get(k) != settings.get(k)]
    if changed:
      key = changed[0]
      raise ValueError(
          f'{output_dir} holds results evaluated with other settings '
          f'({key}: {old.get(key)!r} there, {settings.get(key)!r} now); pass '
          'a new --output_dir, or delete that directory to start over.')
    return
  os.makedirs(output_dir, exist_ok=True)
  if not distributed.is_main():
    return
  checkpoints.atomic_write_bytes(
      path, json.dumps(settings, indent=2, sort_keys=True).encode())
