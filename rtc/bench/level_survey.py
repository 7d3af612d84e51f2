r"""Which levels kinetix-env ships show the effect of inference delay on a CPU?

  bazel run //rtc/bench:level_survey [-- --output_dir=level_survey_output \
      --csv=docs/level_survey.csv]

For every small (`s/`) and medium (`m/`) level kinetix-env ships (or, with
`--worlds_dir`, every level of another folder such as this repository's
`worlds/`, made by `bazel run //rtc/bench:unicycle_worlds`), per size
class (a class shares its static parameters, so its levels train together,
vmapped):

1. `expert`: the quickstart-preset PPO experts (configs/expert.py:quickstart,
   2 seeds) on every level of the class;
2. `data`: the quickstart-preset expert data, for the levels whose experts
   end at solve rate >= `--threshold` (mean over seeds);
3. `flow_train`: the quickstart's small flow policy on those levels;
4. `flow_eval`: naive and realtime at d = 0 and d = 4 (s = max(1, d)),
   `--num_evals` episodes per point.

Then `survey.csv` (and `--csv`): level, the experts' final solve rate,
their minutes (the class's expert wall time over its levels: levels train
together), the update at which they first reach the threshold, three
flow solve rates, the drop d = 0 -> 4, whether the level qualifies for
the CPU suite (expert >= threshold, naive drops by >= `--min_drop`), and
realtime's solve rate at d = 0.

`--from_results=<a benchmark's results.csv>` runs nothing: it prints (and
with `--csv` writes) the survey repeated across replicates, per level naive
flow at d = 0 and 4 and the drop, means over the run's replicates with the
drop's 95% interval (rtc.common.bc.stats.level_drops); a level qualifies
when its mean drop is >= `--min_drop` (the CPU suite's rule).

Every stage of every class resumes (rtc.pipeline's stage markers under
`<output_dir>/<class>/stages/`); progress lines carry the time left.
"""

import csv
import io
import os
import time

from absl import flags

from configs import quickstart as quickstart_config
from rtc.common.base import cache
from rtc.common.base import paths
from rtc.common.base import progress
from rtc.common.bc import checkpoints
from rtc.common.bc import evaluate
from rtc.common.bc import results
from rtc.common.bc import stats
from rtc.common.cli import cli
from rtc.common.core import registry
from rtc.common.env import level_ids
from rtc.expert import store
from rtc import pipeline
from rtc import stages

COLUMNS = ('level', 'expert_solve_rate', 'expert_minutes',
           'expert_update_reaching_threshold', 'flow_naive_d0',
           'flow_naive_d4', 'flow_realtime_d4', 'naive_drop', 'qualifies',
           'flow_realtime_d0')
# (method, delay) points of the flow evaluation: every method at every
# delay, one sweep and so one rollout program (realtime at d = 0, the last
# column, came with it).
POINTS = (('naive', 0), ('naive', 4), ('realtime', 4), ('realtime', 0))


def shipped_levels(size: str, worlds_dir: str = '') -> tuple[str, ...]:
  """Every level id under `<size>/` of `worlds_dir` (default: the levels
  kinetix-env ships), sorted; () if the folder has no such class."""
  if worlds_dir:
    root = os.path.join(level_ids.resolve_worlds_dir(worlds_dir), size)
    if not os.path.isdir(root):
      return ()
  else:
    root = os.path.join(level_ids.package_worlds_dir(), size)
    if not os.path.isdir(root):
      raise FileNotFoundError(f'{root} not found: is kinetix-env installed '
                              '(tools/setup.sh)?')
  return tuple(sorted(f'{size}/{f}' for f in os.listdir(root)
                      if f.endswith('.json')))


def expert_curve(run_dir: str, level_id: str, num_seeds: int) -> dict:
  """{update: solve rate averaged over seeds} from the saved statistics."""
  name = level_ids.level_name(level_id)
  by_update = {}
  for seed in range(num_seeds):
    seed_dir = store.seed_dir(run_dir, seed)
    for u in checkpoints.epoch_dirs(seed_dir):
      path = store.stats_path(run_dir, seed, u, name)
      if os.path.exists(path):
        by_update.setdefault(u, []).append(
            store.read_stats(path)[store.SOLVED])
  return {u: sum(v) / len(v) for u, v in sorted(by_update.items())
          if len(v) == num_seeds}


class SizeClass:
  """The survey's plan (rtc.pipeline) on the levels of one size class."""
  NAME = 'survey'  # Progress lines' tag and the run directories' name.

  def __init__(self, config, threshold: float, log=print):
    self.config, self.threshold, self.log = config, threshold, log
    self.out = paths.resolve(config.output_dir)
    self.expert_dir = os.path.join(self.out, 'logs-expert', self.NAME)
    n = len(level_ids.parse_levels(config.expert.levels))
    # Rough 2-core CPU seconds per stage for n levels (time-left lines).
    updates = int(config.expert.num_updates) / 50  # The preset's: 50.
    c = config
    eval_settings = stages.settings(c.flow_eval)
    eval_settings.update(c.eval.to_dict(), points=POINTS)
    self.pipeline = pipeline.Pipeline(self.NAME, self.out, (
        pipeline.Stage('expert', self._expert, 60 * n * updates,
                       stages.settings(c.expert)),
        pipeline.Stage('data', self._data, 25 * n,
                       dict(stages.settings(c.data), threshold=threshold)),
        pipeline.Stage('flow_train', self._flow_train, 60 * n,
                       stages.settings(c.flow)),
        pipeline.Stage('flow_eval', self._flow_eval, 30 * n, eval_settings),
    ), parallel=False, log=log)

  def finished(self, stage: str):
    return self.pipeline.finished(stage)

  def run(self) -> str:
    return self.pipeline.run()

  def curves(self) -> dict:
    return {lv: expert_curve(self.expert_dir, lv,
                             int(self.config.expert.num_seeds))
            for lv in level_ids.parse_levels(self.config.expert.levels)}

  def good_levels(self) -> list[str]:
    return [lv for lv, curve in self.curves().items()
            if curve and curve[max(curve)] >= self.threshold]

  def _expert(self):
    return stages.expert(self.config.expert, self.out, self.NAME, self.log)

  def _data(self):
    good = self.good_levels()
    if not good:
      self.log(f'[survey] no level of {self.config.expert.levels} reached '
               f'{self.threshold}: nothing to train')
      return {'files': []}
    with self.config.data.unlocked():
      self.config.data.levels = ','.join(good)
    return stages.data(self.config.data, self.expert_dir, self.out, self.log)

  def _flow_train(self):
    if not self.finished('data')['outputs']['files']:
      return {}
    with self.config.flow.unlocked():
      self.config.flow.levels = ','.join(self.good_levels())
    return stages.bc(self.config.flow, 'flow', self.expert_dir,
                     os.path.join(self.out, 'logs-flow'), self.NAME,
                     self.log)

  def _flow_eval(self):
    if not self.finished('flow_train')['outputs']:
      return {}
    c = self.config.flow_eval
    with c.unlocked():
      for k, v in self.config.eval.items():
        c[k] = v
    run_dir = os.path.join(self.out, 'logs-flow', self.NAME)
    out = os.path.join(self.out, 'eval_flow')
    with c.unlocked():
      c.methods = ','.join(dict.fromkeys(m for m, _ in POINTS))
      c.delays = ','.join(str(d) for d in sorted({d for _, d in POINTS}))
    return {'results': evaluate.evaluate(
        c, run_dir, out, registry.make_policy('flow'), 'flow', log=self.log)}

  def rows(self) -> list[dict]:
    """One survey row per level of the class."""
    info = self.finished('expert') or {}
    curves = self.curves()
    minutes = info.get('seconds', 0) / 60 / max(len(curves), 1)
    flow = {}
    eval_info = self.finished('flow_eval')
    if eval_info and eval_info['outputs']:
      for r in results.read_results(eval_info['outputs']['results']):
        flow[(r['level'], r['method'], r['delay'])] = r[
            'returned_episode_solved']
    out = []
    for lv, curve in curves.items():
      final = curve[max(curve)] if curve else float('nan')
      reach = [u for u, v in curve.items() if v >= self.threshold]
      col = 'worlds/' + lv
      rates = {f'flow_{m}_d{d}': flow.get((col, m, d)) for m, d in POINTS}
      row = {'level': lv[:-len('.json')], 'expert_solve_rate': round(final, 3),
             'expert_minutes': round(minutes, 2),
             'expert_update_reaching_threshold': reach[0] if reach else ''}
      for k, v in rates.items():
        row[k] = '' if v is None else round(v, 3)
      have = rates['flow_naive_d0'] is not None and (
          rates['flow_naive_d4'] is not None)
      drop = rates['flow_naive_d0'] - rates['flow_naive_d4'] if have else None
      row['naive_drop'] = '' if drop is None else round(drop, 3)
      row['qualifies'] = ''
      out.append((row, final, drop))
    return out


# The survey repeated across replicates (--from_results): per level, naive
# flow at d = 0 and 4 and the drop, means over replicates with the drop's
# 95% interval (paired within replicate).
REPLICATED_COLUMNS = ('level', 'replicates', 'flow_naive_d0', 'flow_naive_d4',
                      'naive_drop', 'naive_drop_lo', 'naive_drop_hi',
                      'qualifies')


def replicated_rows(rows, min_drop: float) -> list[dict]:
  """REPLICATED_COLUMNS rows from a benchmark's combined results.csv rows; a
  level qualifies when its mean drop over replicates is >= `min_drop`. Rows
  without a policy (one evaluation's results.csv) are read as flow's."""
  rows = [dict(r, policy=r.get('policy') or 'flow') for r in rows]
  drops = stats.level_drops(rows, 'flow', 'naive', 0, 4)
  if not drops:
    raise ValueError('The results hold no flow naive rows at both d = 0 and '
                     'd = 4: run the benchmark with --config.policies '
                     'including flow, --config.eval.methods including naive '
                     'and --config.eval.delays including 0 and 4.')
  out = []
  for level, (at0, at4, drop) in drops.items():
    name = level[len('worlds/'):] if level.startswith('worlds/') else level
    out.append({
        'level': name[:-len('.json')] if name.endswith('.json') else name,
        'replicates': drop.replicates, 'flow_naive_d0': round(at0.mean, 3),
        'flow_naive_d4': round(at4.mean, 3),
        'naive_drop': round(drop.mean, 3),
        'naive_drop_lo': '' if drop.replicates < 2 else round(drop.lo, 3),
        'naive_drop_hi': '' if drop.replicates < 2 else round(drop.hi, 3),
        'qualifies': int(drop.mean >= min_drop)})
  return out


def write_csv(path: str, rows: list[dict], fieldnames=COLUMNS) -> None:
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=fieldnames)
  w.writeheader()
  w.writerows(rows)
  checkpoints.atomic_write_bytes(path, buf.getvalue().encode())


def survey(classes: dict, output_dir: str, threshold: float,
           min_drop: float, num_evals: int, preset: str = '',
           expert_updates: int = 0, worlds_dir: str = '',
           log=print) -> list[dict]:
  """Runs every class ({name: level ids}); returns the survey rows.

  `expert_updates` > 0 replaces the quickstart expert's PPO updates;
  `worlds_dir` (absolute, or '' for kinetix-env's) holds the levels, and
  every later stage reads it from the expert run.
  """
  out = paths.resolve(output_dir)
  t0 = time.time()
  rows = []
  for i, (name, ids) in enumerate(classes.items()):
    log(f'[survey] class {i + 1}/{len(classes)} {name}: {len(ids)} '
        f'level(s), elapsed {progress.format_duration(time.time() - t0)}')
    config = quickstart_config.get_config(preset)
    config.output_dir = os.path.join(out, name)
    config.expert.levels = ','.join(ids)
    config.expert.worlds_dir = worlds_dir
    config.eval.num_evals = num_evals
    if expert_updates:
      config.expert.num_updates = expert_updates
    group = SizeClass(config, threshold, log=log)
    group.run()
    for row, final, drop in group.rows():
      row['qualifies'] = int(final >= threshold and drop is not None and
                             drop >= min_drop)
      rows.append(row)
  write_csv(os.path.join(out, 'survey.csv'), rows)
  return rows


FLAGS = flags.FLAGS
flags.DEFINE_string('output_dir', 'level_survey_output',
                    'Where the survey runs and writes survey.csv.')
flags.DEFINE_string('csv', '', 'Also copy survey.csv here (e.g. '
                    'docs/level_survey.csv).')
flags.DEFINE_list('classes', ['m', 's'], 'Size classes to survey.')
flags.DEFINE_list('levels', [], 'Only these level ids (default: every '
                  'level of each class under --worlds_dir).')
flags.DEFINE_string('worlds_dir', '', 'A folder of levels (<class>/*.json, '
                    'e.g. worlds/ of this repository); default: the levels '
                    'kinetix-env ships.')
flags.DEFINE_float('threshold', 0.9, 'Expert solve rate a level needs.')
flags.DEFINE_float('min_drop', 0.2, 'Naive flow drop d = 0 -> 4 a suite '
                   'level needs.')
flags.DEFINE_integer('num_evals', 128, 'Episodes per evaluation point.')
flags.DEFINE_string('from_results', '', 'A benchmark\'s combined results.csv '
                    '(with replicates): print, and with --csv write, the '
                    'replicated survey table (naive flow\'s drop d = 0 -> 4 '
                    'per level over replicates) instead of running the '
                    'survey.')
flags.DEFINE_integer('expert_updates', 0, 'PPO updates of every expert (0: '
                     'the quickstart preset\'s, configs/expert.py); more '
                     'for levels whose experts end below --threshold.')


def main(argv):
  del argv
  cache.enable_compilation_cache()
  for name, lo, hi in (('threshold', 0, 1), ('min_drop', 0, 1)):
    if not lo <= getattr(FLAGS, name) <= hi:
      raise ValueError(f'--{name} must be in [{lo}, {hi}], got '
                       f'{getattr(FLAGS, name)}.')
  if FLAGS.num_evals < 1:
    raise ValueError(f'--num_evals must be >= 1, got {FLAGS.num_evals}.')
  if FLAGS.from_results:
    rows = replicated_rows(
        results.read_results(paths.resolve(FLAGS.from_results),
                             '--from_results'),
        FLAGS.min_drop)
    if FLAGS.csv:
      write_csv(paths.resolve(FLAGS.csv), rows, REPLICATED_COLUMNS)
    print(results_table(rows, REPLICATED_COLUMNS))
    return
  if FLAGS.expert_updates < 0:
    raise ValueError('--expert_updates must be >= 0 (0: the quickstart '
                     f'preset\'s), got {FLAGS.expert_updates}.')
  unknown = [c for c in FLAGS.classes if c not in ('s', 'm', 'l')]
  if unknown:
    raise ValueError(f'--classes: unknown size class {unknown[0]!r}; use '
                     's, m or l (kinetix-env level folders).')
  worlds_dir = paths.resolve_shipped_dir(FLAGS.worlds_dir)
  if worlds_dir and not os.path.isdir(worlds_dir):
    raise ValueError(f'--worlds_dir={worlds_dir} is not a folder: point it '
                     'at one holding <class>/*.json (e.g. worlds), or leave '
                     'it empty for the levels kinetix-env ships.')
  classes = {}
  for size in FLAGS.classes:
    ids = shipped_levels(size, worlds_dir)
    if FLAGS.levels:
      ids = tuple(i for i in level_ids.parse_levels(FLAGS.levels)
                  if i.startswith(size + '/'))
    if ids:
      classes[size] = ids
  if not classes:
    raise ValueError(f'No level to survey: --levels={",".join(FLAGS.levels)} '
                     f'names none of the classes {FLAGS.classes}'
                     + (f' under --worlds_dir={worlds_dir}.' if worlds_dir
                        else '.'))
  rows = survey(classes, FLAGS.output_dir, FLAGS.threshold, FLAGS.min_drop,
                FLAGS.num_evals, expert_updates=FLAGS.expert_updates,
                worlds_dir=worlds_dir)
  if FLAGS.csv:
    write_csv(paths.resolve(FLAGS.csv), rows)
  print(results_table(rows))


def results_table(rows, columns=COLUMNS) -> str:
  lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
  for r in rows:
    lines.append('| ' + ' | '.join(str(r[k]) for k in columns) + ' |')
  return '\n'.join(lines)


if __name__ == '__main__':
  cli.run(main)  # Bad input: one line `error: ...`, exit status 2.
