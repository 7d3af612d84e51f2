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
import platform
import threading
import time
from typing import Callable

from absl import flags
import numpy as np

from rtc.common import checkpoints
from rtc.common import cli
from rtc.common import evaluate
from rtc.common import paths
from rtc.common import registry
from rtc.common import results
from rtc.common import summary
from rtc.common import sweep
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


def wall_seconds(seconds_of, parallel: bool = True) -> float:
  """The plan's wall time from each stage's seconds (side-by-side branches
  count as their longest)."""
  total = 0.0
  for step in PLAN:
    if isinstance(step, str):
      total += seconds_of(step)
    else:
      branch = [sum(seconds_of(s) for s in b) for b in step]
      total += max(branch) if parallel else sum(branch)
  return total


class Quickstart:
  """Runs the stages in order, skipping finished ones."""

  def __init__(self, config, log: Callable[[str], None] = print):
    self.config = config
    self.log = log
    self.out = paths.resolve(config.output_dir)
    self.expert_dir = os.path.join(self.out, 'logs-expert', RUN_NAME)
    self.start = time.time()

  # -- bookkeeping --------------------------------------------------------------

  def _marker(self, stage):
    return os.path.join(self.out, 'stages', f'{stage}.json')

  def finished(self, stage):
    path = self._marker(stage)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)

  def _mark(self, stage, seconds, outputs):
    info = {'stage': stage, 'seconds': seconds, 'outputs': outputs,
            'finished': datetime.datetime.now().isoformat(timespec='seconds')}
    checkpoints.atomic_write_bytes(self._marker(stage),
                                   json.dumps(info, indent=2).encode())

  def _header(self, stage):
    with self._lock:
      left = wall_seconds(
          lambda s: 0 if s in self._done else EXPECTED_SECONDS[s],
          self.config.parallel)
    self.log(f'[quickstart] stage {STAGES.index(stage) + 1}/{len(STAGES)} '
             f'{stage}: elapsed '
             f'{cli.format_duration(time.time() - self.start)}, about '
             f'{cli.format_duration(left)} left (estimate)')

  def _stage(self, stage):
    done = self.finished(stage)
    if done is not None:
      self.log(f'[quickstart] stage {STAGES.index(stage) + 1}/{len(STAGES)} '
               f'{stage}: finished earlier ({done["seconds"]:.0f}s), '
               'skipping')
    else:
      self._header(stage)
      t0 = time.time()
      outputs = self._run(stage)
      self._mark(stage, time.time() - t0, outputs)
      self.log(f'[quickstart] {stage} done in '
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
    for step in PLAN:
      if isinstance(step, str):
        self._stage(step)
      else:
        self._branches(step)
    self.log(f'[quickstart] all stages done in '
             f'{cli.format_duration(time.time() - self.start)}; report: '
             f'{os.path.join(self.out, "report.md")}')
    return self.out

  # -- stages -------------------------------------------------------------------

  def _run(self, stage):
    """`self._<stage>()`; <kind>_train and <kind>_eval are `_bc` and
    `_eval` of their kind unless an instance sets them."""
    method = getattr(self, f'_{stage}', None)
    if method is not None:
      return method()
    kind, _, step = stage.rpartition('_')
    return self._bc(kind) if step == 'train' else self._eval(kind)

  def _expert(self):
    c = self.config.expert  # An interrupted earlier attempt resumes.
    with c.unlocked():
      c.logdir = os.path.join(self.out, 'logs-expert')
      c.run_name = RUN_NAME
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

  def _bc(self, kind):
    c = self.config[kind]
    with c.unlocked():
      c.run_path = self.expert_dir
      c.logdir = os.path.join(self.out, f'logs-{kind}')
      c.run_name = RUN_NAME
    return {'run_dir': train.train_and_evaluate(
        c, registry.make_policy(kind), kind, log=self.log)}

  def _eval(self, kind):
    c = self.config[f'{kind}_eval']
    with c.unlocked():
      for k, v in self.config.eval.items():
        c[k] = v
    run_dir = os.path.join(self.out, f'logs-{kind}', RUN_NAME)
    path = evaluate.evaluate(c, run_dir, os.path.join(self.out,
                                                      f'eval_{kind}'),
                             registry.make_policy(kind), kind, log=self.log)
    rows = results.read_results(path)
    with summary.SummaryWriter(os.path.join(self.out, 'tb',
                                            f'{kind}_eval')) as w:
      for method, by_delay in results.summarise(rows).items():
        for delay, (solved, _) in by_delay.items():
          w.write(delay, {f'{kind}/{method}/solve_rate': solved})
    return {'results': path}

  def _report(self):
    panels, combined = [], []
    for kind, label in ((k, registry.label(k)) for k in KINDS):
      rows = results.read_results(os.path.join(self.out, f'eval_{kind}',
                                               'results.csv'))
      panels.append((label, rows))
      combined += [dict(r, policy=kind) for r in rows]
    csv_path = os.path.join(self.out, 'results.csv')
    write_combined(csv_path, combined)
    png = results.plot(panels, os.path.join(self.out,
                                            'solve_rate_vs_delay.png'))
    report = os.path.join(self.out, 'report.md')
    checkpoints.atomic_write_bytes(report, self.report_text(panels).encode())
    return {'results': csv_path, 'plot': png, 'report': report}

  def report_text(self, panels) -> str:
    c = self.config
    lines = [
        '# rtc quickstart report', '',
        f'Date: {datetime.date.today().isoformat()}; machine: '
        f'{platform.machine()}, {os.cpu_count()} CPU cores, '
        f'{platform.python_implementation()} {platform.python_version()}.',
        '',
        '## Solve rate by method and inference delay',
        f'Execution horizon s = max(1, d); {c.eval.num_evals} evaluation '
        f'episodes per point (standard error <= '
        f'{0.5 / np.sqrt(c.eval.num_evals):.3f}); level '
        f'`{c.expert.levels}`.', '']
    for label, rows in panels:
      lines += [f'### {label}', '',
                results.markdown_table(results.summarise(rows)), '']
    lines += ['![solve rate vs delay](solve_rate_vs_delay.png)', '',
              '## Stages', '', '| stage | wall time | outputs |',
              '|---|---|---|']
    for stage in STAGES[:-1]:
      info = self.finished(stage) or {}
      outs = ', '.join(
          os.path.relpath(v, self.out) if isinstance(v, str) else
          f'{len(v)} file(s)' for v in info.get('outputs', {}).values())
      lines.append(f'| {stage} | '
                   f'{cli.format_duration(info.get("seconds", 0))} | '
                   f'{outs} |')
    total = wall_seconds(
        lambda s: (self.finished(s) or {}).get('seconds', 0)
        if s != 'report' else 0, c.parallel)
    together = ('flow and DD side by side' if c.parallel else
                'one stage after another')
    lines += [f'| total | {cli.format_duration(total)} | wall time, '
              f'{together} |',
              '', '## Settings', '', '```',
              c.to_json_best_effort(indent=2, sort_keys=True), '```', '']
    return '\n'.join(lines)


def write_combined(path, rows):
  import csv  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=list(sweep.COLUMNS) + ['policy'])
  w.writeheader()
  for r in rows:
    w.writerow({k: r[k] for k in list(sweep.COLUMNS) + ['policy']})
  checkpoints.atomic_write_bytes(path, buf.getvalue().encode())


def _extra_flags(flag_values):
  flags.DEFINE_string('output_dir', None, 'Where everything goes (default '
                      'from the config: quickstart_output).',
                      flag_values=flag_values)


def _check(config, flag_values):
  """Every stage's options before the first stage starts."""
  if flag_values.output_dir:
    config.output_dir = flag_values.output_dir
  for kind in KINDS:
    validate.check_model(config[kind].model, registry.make_policy(kind),
                         f'{kind}.')
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
