r"""The whole method on one CPU, from nothing: the README's first command.

  bazel run //rtc:quickstart [-- --output_dir=quickstart_output]

Stages (configs/quickstart.py sets their sizes):

1. `expert`: PPO experts on one small level (rtc.expert.train);
2. `data`: an expert dataset (rtc.expert.generate_data);
3. `flow_train`, 4. `dd_train`: flow and discrete-diffusion behaviour
   cloning (rtc.common.bc.train), one stage per built-in policy family of
   rtc.common.core.registry;
5. `flow_eval`, 6. `dd_eval`: naive, realtime, bid and hard_masking at
   delays 0-4 with execution horizon max(1, d) (rtc.common.bc.sweep);

   the flow branch (3, 5) and the DD branch (4, 6) run side by side, one
   thread each (`--config.parallel=False` runs them one after the other):
   a rollout keeps about one core busy, so two branches use both cores of
   a small machine;
7. `report` (rtc.report): `results.csv` (both policies, with `policy`,
   replicate and provenance columns), `solve_rate_vs_delay.png` (flow and
   DD panels, shared axis) and `report.md` (solve rates by method and
   delay, verdicts, wall times, the settings the stages recorded).

Everything lands under `--output_dir`: the run directories (each with its
TensorBoard logs), `eval_flow/`, `eval_dd/`, `tb/` (data and evaluation
scalars), and `stages/<stage>.json` for every finished stage. A re-run
skips finished stages; an interrupted stage resumes where it stopped (the
expert stage from its last save); a stage that finished with other settings
stops the re-run with one line naming the setting (rtc.pipeline).

`--config.replicates=R` repeats stages 1-6 R times (docs/benchmark.md):
replicate 0 in `--output_dir`, replicate r >= 1 in
`<output_dir>/replicate_<r>/`, each with its own seeds (`replicate_seeds`),
experts, data, policies and evaluation; the report pools them with
intervals over replicates (rtc.common.bc.stats). A re-run with a larger R runs
only the new replicates.
"""

import copy
import json
import os
from typing import Callable

from absl import flags

from configs import quickstart as quickstart_config

from rtc.common.base import paths
from rtc.common.base import progress
from rtc.common.base import validate
from rtc.common.bc import checkpoints
from rtc.common.bc import cost
from rtc.common.cli import cli
from rtc.common.core import registry
from rtc import pipeline
from rtc import report
from rtc import stages

RUN_NAME = 'quickstart'
KINDS = registry.BUILTIN_KINDS  # The policy families compared.
# Rough wall time of the shared stages on a 2-core CPU (s), for the
# time-left line (one level, empty compilation cache); each family declares
# its own training and evaluation estimates (rtc.common.core.registry).
EXPECTED_SECONDS = {'expert': 70, 'data': 35, 'report': 5}
# Replicate r's seed of a stage is the stage's own seed option plus
# SEED_STRIDE * (config.seed + r): replicate 0 of base seed 0 runs with the
# stage options' seeds, and replicates never share a seed.
SEED_STRIDE = 1000
REPLICATE_FILE = 'replicate.json'


def policy_kind(name: str) -> str:
  """The registry kind of a compared policy: configs/quickstart.py's
  POLICIES map (name -> kind, preset), or a registered kind by itself."""
  if name in quickstart_config.POLICIES:
    return quickstart_config.POLICIES[name][0]
  if name in registry.kinds():
    return name
  raise ValueError(
      f'--config.policies: {name!r} is neither a policy of configs/'
      f'quickstart.py POLICIES ({", ".join(quickstart_config.POLICIES)}) '
      f'nor a policy kind ({", ".join(registry.kinds())}).')


def config_table(names=()) -> dict:
  """The valid ranges of a quickstart config (rtc.common.base.validate): every
  stage's options, and a training and evaluation block per policy."""
  table = {'replicates': validate.COUNT, 'seed': validate.SEED,
           'expert': validate.EXPERT, 'data': validate.DATA,
           'eval': {k: validate.SWEEP[k] for k in (
               'num_evals', 'num_flow_steps', 'seed', 'latency_batch')}}
  for n in tuple(registry.kinds()) + tuple(names):
    table[n] = validate.BC_TRAIN
    table[f'{n}_eval'] = {**validate.SWEEP,
                          **registry.eval_rules(policy_kind(n))}
  return table


def policy_names(config) -> tuple[str, ...]:
  """The compared policies of a quickstart config, each with its blocks."""
  names = tuple(n.strip() for n in config.policies.split(',') if n.strip())
  if not names:
    raise ValueError('--config.policies is empty; e.g. flow,dd.')
  for n in names:
    policy_kind(n)
    for block in (n, f'{n}_eval'):
      if block not in config:
        raise ValueError(
            f'--config.policies names {n!r} but the config has no '
            f'`{block}` block: use a preset that defines it (e.g. '
            '--config=configs/quickstart.py:variants).')
  return names


def replicate_prefix(r: int) -> str:
  """Replicate r's folder under the output directory ('' for 0)."""
  return '' if r == 0 else f'replicate_{r}/'


def replicate_seeds(config, r: int) -> dict:
  """{'expert', 'data', 'eval': seed, 'policy': {name: seed}} of replicate
  r, all from the base seed `config.seed` (SEED_STRIDE)."""
  offset = SEED_STRIDE * (int(config.seed) + r)
  return {'expert': int(config.expert.seed) + offset,
          'data': int(config.data.seed) + offset,
          'eval': int(config.eval.seed) + offset,
          'policy': {n: int(config[n].seed) + offset
                     for n in policy_names(config)}}


def suite(config, r: int) -> dict:
  """What makes replicate r's folder part of this suite (REPLICATE_FILE)."""
  return {'levels': config.expert.levels,
          'worlds_dir': config.expert.worlds_dir, 'base_seed': int(
              config.seed), 'replicate': r}


def check_replicates(config, out: str) -> None:
  """Raises ValueError (one line) if a replicate folder under `out` belongs
  to another suite. Writes nothing."""
  for r in range(int(config.replicates)):
    path = os.path.join(out, replicate_prefix(r), REPLICATE_FILE)
    if not os.path.exists(path):
      continue
    with open(path) as f:
      there = json.load(f)
    diff = pipeline.first_difference(there, suite(config, r))
    if diff:
      raise ValueError(
          f'{path}: replicate {r} there is of another suite ({diff}); pass '
          'a new --output_dir, or the options that made it.')


def expected_seconds(config, names) -> dict:
  """Each stage's expected seconds in one replicate: the estimates were
  measured on one level at 128 episodes a point."""
  levels = len(config.expert.levels.split(','))
  episodes = int(config.eval.num_evals) / 128
  out = {'expert': EXPECTED_SECONDS['expert'] * levels,
         'data': EXPECTED_SECONDS['data'] * levels,
         'report': EXPECTED_SECONDS['report']}
  for n in names:
    family = registry.quickstart(policy_kind(n))
    for step, scale in (('train', levels), ('eval', levels * episodes)):
      out[f'{n}_{step}'] = scale * family[f'{step}_seconds']
  return out


def eval_config(config, name: str, seed: int):
  """Policy `name`'s evaluation configuration: its block with the shared
  evaluation settings (`config.eval`) and replicate seed."""
  c = copy.deepcopy(config[f'{name}_eval'])
  with c.unlocked():
    for k, v in config.eval.items():
      if k != 'methods_for':
        c[k] = v
    c.methods = config.eval.methods_for.get(name) or c.methods
    c.seed = seed
  return c


def _seeded(block, seed: int):
  c = copy.deepcopy(block)
  with c.unlocked():
    c.seed = seed
  return c


def replicate_plan(config, out: str, r: int, run_name: str,
                   log: Callable[[str], None]) -> list:
  """Replicate r's steps: expert, data, then one branch per policy
  (training, evaluation) side by side."""
  pre = replicate_prefix(r)
  folder = os.path.normpath(os.path.join(out, pre))
  names = policy_names(config)
  seeds = replicate_seeds(config, r)
  secs = expected_seconds(config, names)
  expert_dir = os.path.join(folder, 'logs-expert', run_name)
  ce = _seeded(config.expert, seeds['expert'])
  cd = _seeded(config.data, seeds['data'])

  steps = [
      pipeline.Stage(pre + 'expert',
                     lambda: stages.expert(ce, folder, run_name, log),
                     secs['expert'], stages.settings(ce), option='expert.'),
      pipeline.Stage(pre + 'data', lambda: stages.data(cd, expert_dir,
                                                       folder, log),
                     secs['data'], stages.settings(cd), option='data.')]
  branches = []
  for n in names:
    kind = policy_kind(n)
    ct = _seeded(config[n], seeds['policy'][n])
    cv = eval_config(config, n, seeds['eval'])
    logdir = os.path.join(folder, f'logs-{n}')
    branches.append((
        pipeline.Stage(
            f'{pre}{n}_train',
            lambda ct=ct, kind=kind, logdir=logdir: stages.bc(
                ct, kind, expert_dir, logdir, run_name, log),
            secs[f'{n}_train'], stages.settings(ct), option=f'{n}.'),
        pipeline.Stage(
            f'{pre}{n}_eval',
            lambda cv=cv, kind=kind, n=n, logdir=logdir: stages.evaluate(
                cv, kind, os.path.join(logdir, run_name),
                os.path.join(folder, f'eval_{n}'),
                os.path.join(folder, 'tb', f'{n}_eval'), n, log),
            secs[f'{n}_eval'], stages.settings(cv), option=f'{n}_eval.')))
  return steps + [tuple(branches)]


def report_settings(config, names) -> dict:
  """What the report depends on beyond the stages' outputs (a change
  redoes it); the latency CSV only when set."""
  out = {'policies': list(names), 'replicates': int(config.replicates)}
  if config.get('report_latency_csv'):
    out['latency_csv'] = paths.resolve(config.report_latency_csv)
    out['latency_batch'] = int(config.eval.latency_batch)
  return out


def make_pipeline(config, name: str = 'quickstart',
                  log: Callable[[str], None] = progress.write_line,
                  wrap=None) -> pipeline.Pipeline:
  """The plan: every replicate's stages, then the report. `name` is the
  progress lines' tag and the run directories' name; `wrap(stage)` (tests)
  replaces each stage."""
  out = paths.resolve(config.output_dir)
  names = policy_names(config)
  plan = []
  for r in range(int(config.replicates)):
    plan += replicate_plan(config, out, r, name, log)
  holder = {}
  plan.append(pipeline.Stage(
      'report', lambda: report.write(record(holder['pipe'], config, name)),
      EXPECTED_SECONDS['report'], report_settings(config, names),
      redo=True))
  if wrap is not None:
    plan = [wrap(s) if isinstance(s, pipeline.Stage) else
            tuple(tuple(wrap(x) for x in b) for b in s) for s in plan]
  pipe = pipeline.Pipeline(name, out, plan, bool(config.parallel), log)
  holder['pipe'] = pipe
  return pipe


def record(pipe: pipeline.Pipeline, config, name: str) -> report.Record:
  """What ran, from the finished stages' markers (not the live config)."""
  names = policy_names(config)
  titles = {n: config.get('labels', {}).get(n) or report.label(
      n, policy_kind(n)) for n in names}
  replicates = []
  for r in range(int(config.replicates)):
    pre = replicate_prefix(r)
    done = {s.id[len(pre):]: pipe.finished(s.id) for s in pipe.stages
            if s.id.startswith(pre) and '/' not in s.id[len(pre):]}
    live = replicate_seeds(config, r)  # For markers of older rtc only.

    def seed(stage, fallback, done=done):
      return (done[stage].get('settings') or {}).get('seed', fallback)

    seeds = {'expert': seed('expert', live['expert']),
             'data': seed('data', live['data']),
             'eval': seed(f'{names[0]}_eval', live['eval']),
             'policy': {n: seed(f'{n}_train', live['policy'][n])
                        for n in names}}
    replicates.append(report.Replicate(
        index=r, seeds=seeds,
        expert_dir=done['expert']['outputs']['run_dir'],
        data_settings=done['data']['settings'],
        runs={n: done[f'{n}_train']['outputs']['run_dir'] for n in names},
        evals={n: done[f'{n}_eval']['outputs']['results'] for n in names}))
  stage_info = tuple((s.id, pipe.finished(s.id)) for s in pipe.stages
                     if s.id != 'report')
  latency_csv = config.get('report_latency_csv') or ''
  return report.Record(
      name=name, out=pipe.out, policies=names, titles=titles,
      replicates=tuple(replicates), stages=stage_info,
      wall_seconds=pipe.recorded_seconds(), parallel=pipe.parallel,
      bases=quickstart_config.training_time_bases(names),
      latency_csv=paths.resolve(latency_csv) if latency_csv else '',
      latency_batch=int(config.eval.latency_batch))


def run(config, name: str = 'quickstart',
        log: Callable[[str], None] = progress.write_line, wrap=None) -> str:
  """Checks, then runs every stage; returns the output directory."""
  pipe = make_pipeline(config, name, log, wrap)
  check_replicates(config, pipe.out)
  pipe.check()
  for r in range(int(config.replicates)):
    path = os.path.join(pipe.out, replicate_prefix(r), REPLICATE_FILE)
    if not os.path.exists(path):
      checkpoints.atomic_write_bytes(
          path, json.dumps(suite(config, r), indent=2).encode())
  return pipe.run(then=f'; report: {os.path.join(pipe.out, "report.md")}')


def _extra_flags(flag_values):
  flags.DEFINE_string('output_dir', None, 'Where everything goes (default '
                      'from the config: quickstart_output).',
                      flag_values=flag_values)


def _check(config, flag_values):
  """Every stage's options before the first stage starts."""
  if flag_values.output_dir:
    config.output_dir = flag_values.output_dir
  table = config_table()
  for name in policy_names(config):
    kind = policy_kind(name)
    if name not in table:  # Presets' extra policies.
      extra = config_table([name])
      validate.check_config(config[name], extra[name], f'{name}.')
      validate.check_config(config[f'{name}_eval'], extra[f'{name}_eval'],
                            f'{name}_eval.')
    validate.check_model(config[name].model, registry.make_policy(kind),
                         f'{name}.')
  option = '--output_dir' if flag_values.output_dir else '--config.output_dir'
  out = paths.resolve(config.output_dir)
  paths.check_writable_dir(out, option)
  check_replicates(config, out)
  if config.get('report_latency_csv'):  # One line if unreadable or bad.
    cost.read_csv(paths.resolve(config.report_latency_csv))
  make_pipeline(config, log=lambda _: None).check()


BINARY = cli.Binary(
    config_file='quickstart.py',
    help='Quickstart configuration (an ml_collections config file).',
    table=config_table(), check=_check, extra_flags=_extra_flags,
    work=lambda config, flag_values: run(config),
    lock_config=False)

if __name__ == '__main__':
  cli.run(BINARY)
