r"""The whole method on one CPU, from nothing: the README's first command.

  bazel run //rtc:quickstart [-- --output_dir=quickstart_output]

Stages (configs/quickstart.py sets their sizes):

1. `expert`: PPO experts on one small level (rtc.expert.train);
2. `data`: an expert dataset (rtc.expert.generate_data);
3. `flow_train`, 4. `dd_train`: flow and discrete-diffusion behaviour
   cloning (rtc.common.train), one stage per built-in policy family of
   rtc.common.registry;
5. `flow_eval`, 6. `dd_eval`: naive, realtime, bid and hard_masking at
   delays 0-4 with execution horizon max(1, d) (rtc.common.sweep);

   the flow branch (3, 5) and the DD branch (4, 6) run side by side, one
   thread each (`--config.parallel=False` runs them one after the other):
   a rollout keeps about one core busy, so two branches use both cores of
   a small machine;
7. `report`: `results.csv` (both policies, with a `policy` column),
   `solve_rate_vs_delay.png` (flow and DD panels, shared axis) and
   `report.md` (solve rates by method and delay, settings, wall times).

Everything lands under `--output_dir`: the run directories (each with its
TensorBoard logs), `eval_flow/`, `eval_dd/`, `tb/` (data and evaluation
scalars), and `stages/<stage>.json` for every finished stage. A re-run
skips finished stages; an interrupted stage resumes where it stopped (the
expert stage from its last save).
"""

import datetime
import json
import os
import threading
import time
from typing import Callable

from absl import flags
import numpy as np

from rtc import report
from rtc.common import checkpoints
from rtc.common import cli
from rtc.common import evaluate
from rtc.common import paths
from rtc.common import progress
from rtc.common import registry
from rtc.common import results
from rtc.common import summary
from rtc.common import train
from rtc.common import validate
from rtc.expert import generate_data
from rtc.expert import train as expert_train

RUN_NAME = 'quickstart'
KINDS = registry.BUILTIN_KINDS  # The policy families compared.
STAGES = (('expert', 'data') + tuple(f'{k}_train' for k in KINDS) +
          tuple(f'{k}_eval' for k in KINDS) + ('report',))
# Rough wall time of each stage on a 2-core CPU (s), for the time-left line.
# Measured on a 2-core CPU with an empty compilation cache (README.md).
EXPECTED_SECONDS = {'expert': 70, 'data': 35, 'flow_train': 70,
                    'dd_train': 95, 'flow_eval': 200, 'dd_eval': 255,
                    'report': 5}
# Stages run in this order; the branches of a tuple run side by side.
PLAN = ('expert', 'data', tuple((f'{k}_train', f'{k}_eval') for k in KINDS),
        'report')


def policy_kind(name: str) -> str:
  """The registry kind of a compared policy: `<kind>` or `<kind>_<preset>`
  (a preset of configs/<kind>.py, e.g. dd_masked)."""
  kind = name if name in registry.kinds() else name.partition('_')[0]
  if kind not in registry.kinds():
    raise ValueError(f'--config.policies: {name!r} is neither a policy kind '
                     f'({", ".join(registry.kinds())}) nor <kind>_<preset>.')
  return kind


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


def wall_seconds(seconds_of, parallel: bool = True, plan=PLAN) -> float:
  """The plan's wall time from each stage's seconds (side-by-side branches
  count as their longest)."""
  total = 0.0
  for step in plan:
    if isinstance(step, str):
      total += seconds_of(step)
    else:
      branch = [sum(seconds_of(s) for s in b) for b in step]
      total += max(branch) if parallel else sum(branch)
  return total


class Quickstart:
  """Runs the stages in order, skipping finished ones.

  A subclass may run another plan: it sets NAME, RUN_NAME, STAGES, PLAN and
  EXPECTED_SECONDS and a `_<stage>` method for each stage of its own.
  """
  NAME = 'quickstart'
  RUN_NAME = RUN_NAME
  STAGES = STAGES
  PLAN = PLAN
  EXPECTED_SECONDS = EXPECTED_SECONDS

  def __init__(self, config,
               log: Callable[[str], None] = progress.write_line):
    self.config = config
    self.log = log
    self.out = paths.resolve(config.output_dir)
    self.expert_dir = os.path.join(self.out, 'logs-expert', self.RUN_NAME)
    self.start = time.time()
    if self.PLAN is PLAN:  # The quickstart's own plan, over its policies.
      self.names = policy_names(config)
      self.STAGES = (('expert', 'data') +  # pylint: disable=invalid-name
                     tuple(f'{n}_train' for n in self.names) +
                     tuple(f'{n}_eval' for n in self.names) + ('report',))
      self.PLAN = ('expert', 'data', tuple(  # pylint: disable=invalid-name
          (f'{n}_train', f'{n}_eval') for n in self.names), 'report')
      self.EXPECTED_SECONDS = dict(EXPECTED_SECONDS)  # pylint: disable=invalid-name
      # The estimates were measured on one level at 128 episodes a point.
      levels = len(config.expert.levels.split(','))
      episodes = int(config.eval.num_evals) / 128
      for n in self.names:
        for step, scale in (('train', levels), ('eval', levels * episodes)):
          self.EXPECTED_SECONDS[f'{n}_{step}'] = scale * EXPECTED_SECONDS[
              f'{policy_kind(n)}_{step}']
      for stage in ('expert', 'data'):
        self.EXPECTED_SECONDS[stage] *= levels

  # -- bookkeeping --------------------------------------------------------------

  def _marker(self, stage):
    return os.path.join(self.out, 'stages', f'{stage}.json')

  def finished(self, stage):
    path = self._marker(stage)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)

  def _inputs(self, stage):
    """What a stage's outputs depend on that a re-run may change: the
    report covers the policies of this run (a re-run that adds one redoes
    it). Compared with its marker's; None for the other stages."""
    return list(self.names) if stage == 'report' else None

  def _mark(self, stage, seconds, outputs):
    info = {'stage': stage, 'seconds': seconds, 'outputs': outputs,
            'inputs': self._inputs(stage),
            'finished': datetime.datetime.now().isoformat(timespec='seconds')}
    checkpoints.atomic_write_bytes(self._marker(stage),
                                   json.dumps(info, indent=2).encode())

  def _header(self, stage):
    with self._lock:
      left = wall_seconds(
          lambda s: 0 if s in self._done else self.EXPECTED_SECONDS[s],
          self.config.parallel, self.PLAN)
    self.log(f'[{self.NAME}] stage {self.STAGES.index(stage) + 1}/'
             f'{len(self.STAGES)} '
             f'{stage}: elapsed '
             f'{cli.format_duration(time.time() - self.start)}, about '
             f'{cli.format_duration(left)} left (estimate)')

  def _stage(self, stage):
    done = self.finished(stage)
    if done is not None and done.get('inputs') != self._inputs(stage):
      self.log(f'[{self.NAME}] {stage}: made from {done.get("inputs")}, '
               f'now {self._inputs(stage)}: redoing it')
      done = None
    if done is not None:
      self.log(f'[{self.NAME}] stage {self.STAGES.index(stage) + 1}/'
               f'{len(self.STAGES)} {stage}: finished earlier '
               f'({done["seconds"]:.0f}s), skipping')
    else:
      self._header(stage)
      t0 = time.time()
      outputs = self._run(stage)
      self._mark(stage, time.time() - t0, outputs)
      self.log(f'[{self.NAME}] {stage} done in '
               f'{cli.format_duration(time.time() - t0)}')
    with self._lock:
      self._done.add(stage)

  def _branches(self, branches):
    """Runs each branch's stages in order, the branches side by side.

    Every branch runs to its end (or its first error); then the first
    error, if any, is raised. Daemon threads, so Ctrl-C stops the process;
    a re-run resumes the interrupted stages.
    """
    if not self.config.parallel:
      for branch in branches:
        for stage in branch:
          self._stage(stage)
      return
    errors = [None] * len(branches)

    def run_branch(i):
      try:
        for stage in branches[i]:
          self._stage(stage)
      except BaseException as e:  # pylint: disable=broad-except
        errors[i] = e

    threads = [threading.Thread(target=run_branch, args=(i,), daemon=True,
                                name='+'.join(b)) for i, b in
               enumerate(branches)]
    for t in threads:
      t.start()
    for t in threads:
      while t.is_alive():
        t.join(0.5)
    for e in errors:
      if e is not None:
        raise e

  def run(self):
    os.makedirs(self.out, exist_ok=True)
    self._lock = threading.Lock()
    self._done = set()
    for step in self.PLAN:
      if isinstance(step, str):
        self._stage(step)
      else:
        self._branches(step)
    report = (f'; report: {os.path.join(self.out, "report.md")}'
              if 'report' in self.STAGES else '')
    self.log(f'[{self.NAME}] all stages done in '
             f'{cli.format_duration(time.time() - self.start)}{report}')
    return self.out

  # -- stages -------------------------------------------------------------------

  def _run(self, stage):
    """`self._<stage>()`; <kind>_train and <kind>_eval are `_bc` and
    `_eval` of their kind unless an instance sets them."""
    method = getattr(self, f'_{stage}', None)
    if method is not None:
      return method()
    name, _, step = stage.rpartition('_')
    return self._bc(name) if step == 'train' else self._eval(name)

  def _expert(self):
    c = self.config.expert  # An interrupted earlier attempt resumes.
    with c.unlocked():
      c.logdir = os.path.join(self.out, 'logs-expert')
      c.run_name = self.RUN_NAME
    return {'run_dir': expert_train.train(c, log=self.log)}

  def _data(self):
    c = self.config.data
    with c.unlocked():
      c.run_path = self.expert_dir
    files = generate_data.generate(c, log=self.log)
    with summary.SummaryWriter(os.path.join(self.out, 'tb', 'data')) as w:
      for path in files:
        with np.load(path) as d:
          done = d['done']
          name = os.path.basename(path)[:-4]
          w.write(0, {f'{name}/steps': done.size,
                      f'{name}/episodes': done.sum(),
                      f'{name}/solve_rate': d['solved'][done].mean()
                      if done.any() else 0.0,
                      f'{name}/mean_length': d['length'][done].mean()
                      if done.any() else 0.0})
    return {'files': files}

  def _bc(self, name):
    """Behaviour cloning of policy `name` (a kind, or <kind>_<preset>)."""
    c = self.config[name]
    kind = policy_kind(name)
    with c.unlocked():
      c.run_path = self.expert_dir
      c.logdir = os.path.join(self.out, f'logs-{name}')
      c.run_name = self.RUN_NAME
    return {'run_dir': train.train_and_evaluate(
        c, registry.make_policy(kind), kind, log=self.log)}

  def _eval(self, name):
    c = self.config[f'{name}_eval']
    kind = policy_kind(name)
    with c.unlocked():
      for k, v in self.config.eval.items():
        if k != 'methods_for':
          c[k] = v
      c.methods = self.config.eval.methods_for.get(name) or c.methods
    run_dir = os.path.join(self.out, f'logs-{name}', self.RUN_NAME)
    path = evaluate.evaluate(c, run_dir, os.path.join(self.out,
                                                      f'eval_{name}'),
                             registry.make_policy(kind), kind, log=self.log)
    rows = results.read_results(path)
    with summary.SummaryWriter(os.path.join(self.out, 'tb',
                                            f'{name}_eval')) as w:
      for method, by_delay in results.summarise(rows).items():
        for delay, (solved, _) in by_delay.items():
          w.write(delay, {f'{name}/{method}/solve_rate': solved})
    return {'results': path}

  def _report(self):
    return report.write(self, policy_kind)

  def wall_seconds(self, seconds_of) -> float:
    return wall_seconds(seconds_of, self.config.parallel, self.PLAN)


def _extra_flags(flag_values):
  flags.DEFINE_string('output_dir', None, 'Where everything goes (default '
                      'from the config: quickstart_output).',
                      flag_values=flag_values)


def _check(config, flag_values):
  """Every stage's options before the first stage starts."""
  if flag_values.output_dir:
    config.output_dir = flag_values.output_dir
  for name in policy_names(config):
    kind = policy_kind(name)
    if name not in validate.QUICKSTART:  # Presets' extra policies.
      validate.check_config(config[name], validate.BC_TRAIN, f'{name}.')
      validate.check_config(config[f'{name}_eval'], validate.SWEEP,
                            f'{name}_eval.')
    validate.check_model(config[name].model, registry.make_policy(kind),
                         f'{name}.')
  option = '--output_dir' if flag_values.output_dir else '--config.output_dir'
  paths.check_writable_dir(paths.resolve(config.output_dir), option)


BINARY = cli.Binary(
    config_file='quickstart.py',
    help='Quickstart configuration (an ml_collections config file).',
    table=validate.QUICKSTART, check=_check, extra_flags=_extra_flags,
    work=lambda config, flag_values: Quickstart(config).run(),
    lock_config=False)

if __name__ == '__main__':
  cli.run(BINARY)
