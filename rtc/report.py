"""The report of a quickstart or benchmark run (rtc.quickstart's `report`).

`write(record)` takes a plain `Record` of what ran (the stages' markers:
run directories, evaluation results, seeds) and writes, under its output
directory:

* `results.csv`: every replicate's rows of every policy, with the columns
  of rtc.common.bc.results.COMBINED_COLUMNS (policy, replicate, seeds,
  episodes, run directory, settings hash);
* one level: `solve_rate_vs_delay.png` (one panel per policy);
  several levels: `mean_solve_rate_vs_delay.png` (the mean over levels with
  standard errors) and `per_level_solve_rate_vs_delay.png`;
  several replicates: also `solve_rate_intervals.png` (means with 95%
  intervals over replicates) and `gain_over_naive.png` (the paired gain of
  each method over naive against delay), rtc.common.bc.interval_plot;
* `report.md`: the solve-rate tables (with intervals over replicates),
  the verdict table (rtc.common.bc.stats), the stages' wall times and the
  settings each stage recorded: the run directories' config.json and the
  evaluations' eval_settings.json, never the configuration of the re-run.
"""

import csv
import dataclasses
import datetime
import hashlib
import io
import json
import os
import platform
from typing import Optional

from rtc.common.base import paths
from rtc.common.base import progress
from rtc.common.bc import checkpoints
from rtc.common.bc import cost
from rtc.common.bc import cost_report
from rtc.common.bc import interval_plot
from rtc.common.bc import results
from rtc.common.bc import stats
from rtc.common.core import registry


@dataclasses.dataclass(frozen=True)
class Replicate:
  """What one replicate ran."""
  index: int
  seeds: dict  # {'expert', 'data', 'eval': int, 'policy': {name: int}}.
  expert_dir: str
  data_settings: dict  # What the data stage recorded.
  runs: dict  # {policy: training run directory}.
  evals: dict  # {policy: the evaluation's results.csv}.


@dataclasses.dataclass(frozen=True)
class Record:
  """What ran: the input of `write`."""
  name: str  # 'quickstart', 'benchmark'.
  out: str
  policies: tuple  # Names, in report order.
  titles: dict  # {policy: table title}.
  replicates: tuple  # Replicate, by index.
  stages: tuple  # ((stage id, marker dict), ...) but the report's.
  wall_seconds: float  # The stages' wall time, side by side as run.
  parallel: bool
  # {policy: its base policy}: a training-time RTC policy's methods are
  # compared with its base's (rtc.common.bc.stats.comparisons); its latency
  # is looked up under the base's name.
  bases: dict = dataclasses.field(default_factory=dict)
  # A latency CSV (`bazel run //rtc/bench:latency`): the report derives a
  # cost-adjusted table from the standard sweep (cost_report.derived_rows)
  # at this batch's ratios. '' = none.
  latency_csv: str = ''
  latency_batch: int = 1


def label(name: str, kind: str) -> str:
  """`dd_masked` -> 'discrete diffusion (masked)'."""
  preset = name[len(kind) + 1:]
  return registry.label(kind) + (f' ({preset})' if preset else '')


def figure_names(num_levels: int) -> tuple[str, ...]:
  if num_levels == 1:
    return ('solve_rate_vs_delay.png',)
  return ('mean_solve_rate_vs_delay.png', 'per_level_solve_rate_vs_delay.png')


INTERVAL_FIGURES = ('solve_rate_intervals.png', 'gain_over_naive.png')


def _read_json(path: str) -> Optional[dict]:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def recorded(rep: Replicate, policy: str) -> dict:
  """{part: (file shown, settings)} of one policy in one replicate: what
  its stages recorded."""
  expert_file = os.path.join(rep.expert_dir, 'config.json')
  train_file = os.path.join(rep.runs[policy], 'config.json')
  eval_file = os.path.join(os.path.dirname(rep.evals[policy]),
                           'eval_settings.json')
  return {'expert': (expert_file, _read_json(expert_file)),
          'data': ('data stage marker', rep.data_settings),
          'training': (train_file, _read_json(train_file)),
          'evaluation': (eval_file, _read_json(eval_file))}


def settings_hash(settings: dict) -> str:
  """A short hash of the recorded settings that produced a row."""
  text = json.dumps({k: v for k, (_, v) in settings.items()}, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:10]


def combined_rows(record: Record) -> list[dict]:
  """Every replicate's rows of every policy, with their provenance."""
  out = []
  for rep in record.replicates:
    for name in record.policies:
      settings = recorded(rep, name)
      evals = settings['evaluation'][1] or {}
      extra = {'policy': name, 'replicate': rep.index,
               'expert_seed': rep.seeds['expert'],
               'data_seed': rep.seeds['data'],
               'policy_seed': rep.seeds['policy'][name],
               'eval_seed': evals.get('seed', rep.seeds['eval']),
               'num_evals': evals.get('num_evals', ''),
               'run_dir': os.path.relpath(rep.runs[name], record.out),
               'settings_hash': settings_hash(settings)}
      out += [dict(r, **extra) for r in results.read_results(rep.evals[name])]
  return out


def write_combined(path, rows):
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=results.COMBINED_COLUMNS)
  w.writeheader()
  for r in rows:
    w.writerow({k: r.get(k, '') for k in results.COMBINED_COLUMNS})
  checkpoints.atomic_write_bytes(path, buf.getvalue().encode())


def write(record: Record) -> dict:
  """Writes the outputs above; returns their paths."""
  out = record.out
  combined = combined_rows(record)
  csv_path = os.path.join(out, 'results.csv')
  write_combined(csv_path, combined)
  panels = [(record.titles[n], [r for r in combined if r['policy'] == n])
            for n in record.policies]
  levels = sorted({r['level'] for r in combined})
  num_evals = _num_evals(combined)
  figures = figure_names(len(levels))
  pngs = [results.plot(panels, os.path.join(out, figures[0]),
                       num_evals=num_evals)]
  if len(levels) > 1:
    pngs.append(results.plot(panels, os.path.join(out, figures[1]),
                             per_level=True, num_evals=num_evals))
  if len(record.replicates) > 1:
    figures += INTERVAL_FIGURES
    pngs += interval_plot.plot_all(combined, record.titles,
                                   [os.path.join(out, f)
                                    for f in INTERVAL_FIGURES])
  cost_rows, derived = cost_adjusted_rows(record), False
  if not cost_rows and record.latency_csv:
    cost_rows, derived = derived_cost_rows(record, combined), True
  cost_table = ''
  if cost_rows:  # docs/cost_adjusted.md.
    cost_md, cost_png = cost_report.write(cost_rows, out)
    pngs.append(cost_png)
    with open(cost_md) as f:
      cost_table = f.read()
    cost_table = '\n'.join(
        [cost_source(record, derived), '', cost_table.rstrip(), '',
         '![cost-adjusted solve rate](cost_adjusted.png)', '',
         'Paired at equal compute (the same d0), within replicate:', ''] +
        verdict_table(cost_report.by_d0(cost_rows), record.bases, 'd0'))
  path = os.path.join(out, 'report.md')
  checkpoints.atomic_write_bytes(
      path, text(record, combined, panels, levels, figures,
                 cost_table).encode())
  return {'results': csv_path, 'plots': pngs, 'report': path}


def cost_adjusted_rows(record: Record) -> list[dict]:
  """The rows of every cost-adjusted evaluation of the record (those
  whose results.csv has the d0 column), tagged with policy and replicate."""
  rows = []
  for rep in record.replicates:
    for name in record.policies:
      path = rep.evals[name]
      with open(path, newline='') as f:
        header = next(csv.reader(f), [])
      if all(c in header for c in cost.RESULT_COLUMNS):
        rows += cost_report.read_rows(path, policy=name,
                                      replicate=str(rep.index))
  return rows


def derived_cost_rows(record: Record, combined) -> list[dict]:
  """Cost-adjusted rows derived from the standard sweep's rows at the
  ratios of `record.latency_csv`: each policy's latency is looked up under
  its (base's) name with the sampling options its evaluation recorded."""
  latencies = cost.read_csv(record.latency_csv)
  first = record.replicates[0]
  ratios, chunk = {}, None
  for name in record.policies:
    settings = recorded(first, name)
    model = (settings['evaluation'][1] or {}).get('model', {})
    chunk = int(model.get('action_chunk_size', CHUNK_SIZE))
    methods = sorted({r['method'] for r in combined if r['policy'] == name})
    found = cost.ratios(latencies, record.latency_csv,
                        record.bases.get(name, name),
                        sampling_of(settings['training'][1] or {}, model),
                        methods, record.latency_batch)
    ratios.update({(name, m): v for m, v in found.items()})
  return cost_report.derived_rows(combined, ratios, chunk)


CHUNK_SIZE = 8  # H of evaluations that did not record it.


def sampling_of(training: dict, model: dict) -> str:
  """The latency CSV's sampling key of an evaluated model: from the policy
  its family builds (options added since the run at their defaults), or
  from the recorded options where the run names no family."""
  kind = training.get('kind')
  if kind not in registry.kinds():
    return cost.sampling_key(model)
  policy = registry.make_policy(kind)(model, int(training.get('obs_dim', 1)),
                                      int(training.get('action_dim', 1)))
  return cost.sampling_key(policy.config)


def cost_source(record: Record, derived: bool) -> str:
  if not derived:
    return ('From cost-adjusted evaluation sweeps (each policy x method run '
            'at its own d).')
  return (f'Derived from the standard sweep: a policy x method\'s cell at '
          f'd0 is its row at d = round(d0 x ratio), s = max(1, d), the '
          f'point a cost-adjusted sweep runs; ratios from '
          f'`{paths.shown(record.latency_csv)}` at batch '
          f'{record.latency_batch} (latency / flow naive\'s latency).')


def _num_evals(rows) -> Optional[int]:
  found = {r.get('num_evals') for r in rows} - {None, ''}
  return found.pop() if len(found) == 1 else None


def level_id(column: str) -> str:
  """'worlds/m/h0_unicycle.json' -> 'm/h0_unicycle'."""
  name = column[len('worlds/'):] if column.startswith('worlds/') else column
  return name[:-len('.json')] if name.endswith('.json') else name


def horizon_text(rows) -> str:
  """The execution horizons the rows ran, in words."""
  pairs = sorted({(r['delay'], r['execute_horizon']) for r in rows})
  if all(s == max(1, d) for d, s in pairs):
    return 'Execution horizon s = max(1, d)'
  by_delay = {}
  for d, s in pairs:
    by_delay.setdefault(d, []).append(s)
  if all(len(v) == 1 for v in by_delay.values()):
    return 'Execution horizon ' + ', '.join(
        f's = {v[0]} at d = {d}' for d, v in by_delay.items())
  return ('Execution horizons ' + '; '.join(
      f'd = {d}: s in {{{", ".join(map(str, v))}}}'
      for d, v in by_delay.items()) + ' (each point at its best s)')


def interval_table(by_method: dict) -> str:
  """Methods as rows, delays as columns: 'mean [lo, hi] ± episode SE'."""
  delays = sorted({d for v in by_method.values() for d in v})
  lines = ['| method | ' + ' | '.join(f'd={d}' for d in delays) + ' |',
           '|---|' + '---|' * len(delays)]
  for method, by_delay in by_method.items():
    cells = [f'{stats.format_interval(by_delay[d])} ± '
             f'{by_delay[d].episode_se:.3f}' if d in by_delay else ''
             for d in delays]
    lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def tables(panels, levels, num_evals, names) -> list[str]:
  """Markdown: per policy, the mean table (one replicate: ± standard
  error; several: [95% interval] ± standard error), then (with several
  levels) one row per level and method."""
  lines = []
  for name, (title, rows) in zip(names, panels):
    if len({r['replicate'] for r in rows}) > 1:
      table = interval_table(stats.estimates(rows, num_evals)[name])
    else:
      summary = results.summarise(rows)
      table = results.markdown_table(
          summary, errors=results.standard_errors(rows, summary, num_evals))
    lines += [f'### {title}', '', table, '']
    if len(levels) > 1:
      per = {}
      for lv in levels:
        for method, by_delay in results.summarise(rows, level=lv).items():
          per[f'{level_id(lv)} {method}'] = by_delay
      lines += ['Per level (mean over replicates):', '',
                results.markdown_table(per, title='level, method'), '']
  return lines


def verdict_table(rows, bases=None, delay: str = 'd',
                  reference: str = 'flow') -> list[str]:
  lines = [f'| comparison | {delay} | difference [95% interval] | verdict |',
           '|---|---|---|---|']
  for c in (stats.comparisons(rows, reference_policy=reference, bases=bases)
            + stats.gain_comparisons(rows, reference_policy=reference)):
    lines.append(f'| {c.label} | {c.delay} | '
                 f'{stats.format_interval(c.difference, signed=True)} | '
                 f'{c.difference.verdict} |')
  return lines


def _flat(d, prefix=''):
  out = {}
  for k, v in (d or {}).items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def settings_lines(record: Record) -> list[str]:
  """Replicate 0's recorded settings in full; later replicates' settings
  where they differ from replicate 0's."""
  lines = ['## Settings', '', 'As each stage recorded them when it ran '
           '(not the configuration of a re-run).', '']
  first = record.replicates[0]
  shown = set()
  for name in record.policies:
    for part, (path, value) in recorded(first, name).items():
      if (part, path) in shown:
        continue
      shown.add((part, path))
      where = (os.path.relpath(path, record.out) if os.path.isabs(path)
               else path)
      who = part if part in ('expert', 'data') else f'{name} {part}'
      lines += [f'#### {who} (`{where}`)', '', '```json',
                json.dumps(value, indent=2, sort_keys=True), '```', '']
  for rep in record.replicates[1:]:
    lines += [f'### Replicate {rep.index}: what differs from replicate 0',
              '']
    for name in record.policies:
      mine, base = recorded(rep, name), recorded(first, name)
      for part in mine:
        a, b = _flat(base[part][1]), _flat(mine[part][1])
        diffs = [f'{k}: {b.get(k)!r} (replicate 0: {a.get(k)!r})'
                 for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if diffs:
          lines.append(f'* {name} {part}: ' + '; '.join(diffs))
    lines.append('')
  return lines


def text(record: Record, rows, panels, levels, figures,
         cost_table: str = '') -> str:
  num_evals = _num_evals(rows)
  episodes = num_evals if num_evals is not None else ', '.join(
      str(n) for n in sorted({r.get('num_evals') for r in rows} - {None, ''}))
  where = (f'level `{level_id(levels[0])}`' if len(levels) == 1 else
           f'mean over {len(levels)} levels ('
           + ', '.join(f'`{level_id(lv)}`' for lv in levels) + ')')
  reps = len(record.replicates)
  spread = ('± is the standard error of the episode sampling '
            '(rtc.common.bc.results.standard_errors); it does not cover other '
            'experts, data or training seeds.' if reps == 1 else
            f'Each cell is the mean over levels and {reps} replicates '
            '(each its own experts, data, policy initialisation and '
            'evaluation seed) with its 95% interval over replicates '
            f'(Student t, {reps - 1} degrees of freedom, on the '
            'per-replicate level means) and, after ±, the standard error '
            'of episode sampling alone (docs/benchmark.md).')
  lines = [
      f'# rtc {record.name} report', '',
      f'Date: {datetime.date.today().isoformat()}; machine: '
      f'{platform.machine()}, {os.cpu_count()} CPU cores, '
      f'{platform.python_implementation()} {platform.python_version()}.',
      '', '## Solve rate by method and inference delay',
      f'{horizon_text(rows)}; {episodes} evaluation episodes per point and '
      f'level; {where}; {reps} replicate(s). {spread}', '']
  lines += tables(panels, levels, num_evals, record.policies)
  alt = {'solve_rate_intervals.png': 'means with 95% intervals',
         'gain_over_naive.png': 'paired gain over naive'}
  lines += [f'![{alt.get(f, "solve rate vs delay")}]({f})' for f in figures]
  lines += ['', '## Verdicts', '',
            'Paired within replicate: each method minus naive in a policy, '
            'each policy minus flow for the same method, a training-time '
            'policy\'s training_time minus each method of its base policy; '
            '"better" / "worse" '
            'when the 95% interval excludes 0, else "no detectable '
            'difference" (one replicate: no interval).', '']
  lines += verdict_table(rows, record.bases)
  if cost_table:
    lines += ['', '## Cost-adjusted', '',
              'Each method at the delay its own compute causes: the rows\' '
              'd0 is flow naive sampling\'s delay, d = round(d0 x latency '
              'ratio) capped at H/2 (docs/cost_adjusted.md); cells are solve '
              'rates with the 95% interval over replicates where there are '
              'several.', '', cost_table.rstrip()]
  lines += ['', '## Stages', '', '| stage | wall time | outputs |',
            '|---|---|---|']
  for stage, info in record.stages:
    info = info or {}
    outs = ', '.join(
        os.path.relpath(v, record.out) if isinstance(v, str) else
        f'{len(v)} file(s)' for v in info.get('outputs', {}).values())
    lines.append(f'| {stage} | '
                 f'{progress.format_duration(info.get("seconds", 0))} | '
                 f'{outs} |')
  together = ('policies side by side' if record.parallel else
              'one stage after another')
  lines += [f'| total | {progress.format_duration(record.wall_seconds)} | wall '
            f'time, {together} |', '']
  lines += settings_lines(record)
  return '\n'.join(lines)
