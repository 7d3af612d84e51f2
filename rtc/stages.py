"""The work of the quickstart's stages, as plain functions (rtc.quickstart,
rtc.bench.level_survey): each takes its stage's configuration and the
directories it reads and writes, runs the stage's binary logic, and returns
the outputs its marker records (rtc.pipeline).

`settings(config)` is what a stage's outputs depend on: its configuration
without the paths the pipeline fills in (so a moved output directory still
resumes).
"""

import json
import os
from typing import Callable

import numpy as np

from rtc.common.bc import evaluate as evaluate_lib
from rtc.common.bc import results
from rtc.common.bc import summary
from rtc.common.bc import train
from rtc.common.core import registry
from rtc.expert import generate_data
from rtc.expert import train as expert_train

Log = Callable[[str], None]
# Options the pipeline sets to its own directories.
PATH_OPTIONS = ('logdir', 'run_name', 'run_path', 'output_dir')


def settings(config) -> dict:
  """A stage configuration's settings, without PATH_OPTIONS."""
  return {k: v for k, v in json.loads(config.to_json_best_effort()).items()
          if k not in PATH_OPTIONS}


def expert(c, out: str, run_name: str, log: Log) -> dict:
  """PPO experts into `<out>/logs-expert/<run_name>` (an interrupted
  attempt resumes from its last save)."""
  with c.unlocked():
    c.logdir = os.path.join(out, 'logs-expert')
    c.run_name = run_name
  return {'run_dir': expert_train.train(c, log=log)}


def data(c, expert_dir: str, out: str, log: Log) -> dict:
  """The expert dataset; its statistics to `<out>/tb/data`."""
  with c.unlocked():
    c.run_path = expert_dir
  files = generate_data.generate(c, log=log)
  with summary.SummaryWriter(os.path.join(out, 'tb', 'data')) as w:
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


def bc(c, kind: str, expert_dir: str, logdir: str, run_name: str,
       log: Log) -> dict:
  """Behaviour cloning of a `kind` policy into `<logdir>/<run_name>`."""
  with c.unlocked():
    c.run_path = expert_dir
    c.logdir = logdir
    c.run_name = run_name
  return {'run_dir': train.train_and_evaluate(
      c, registry.make_policy(kind), kind, log=log)}


def evaluate(c, kind: str, run_dir: str, eval_dir: str, tb_dir: str,
             tag: str, log: Log) -> dict:
  """The evaluation sweep of `run_dir` into `eval_dir`; solve rates to
  `tb_dir` as `<tag>/<method>/solve_rate` against the delay."""
  path = evaluate_lib.evaluate(c, run_dir, eval_dir,
                               registry.make_policy(kind), kind, log=log)
  rows = results.read_results(path)
  with summary.SummaryWriter(tb_dir) as w:
    for method, by_delay in results.summarise(rows).items():
      for delay, (solved, _) in by_delay.items():
        w.write(delay, {f'{tag}/{method}/solve_rate': solved})
  return {'results': path}
