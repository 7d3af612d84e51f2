"""The report of a quickstart or benchmark run (rtc.quickstart's `report`).

`write(runner)` reads every compared policy's `eval_<name>/results.csv`
and writes, under the run's output directory:

* `results.csv`: every row, with a `policy` column (the policy's name);
* one level: `solve_rate_vs_delay.png` (one panel per policy);
  several levels: `mean_solve_rate_vs_delay.png` (the mean over levels with
  standard errors) and `per_level_solve_rate_vs_delay.png` (one panel per
  policy and level);
* `report.md`: the solve-rate tables (mean ± standard error over levels;
  and per level when there are several), the stages' wall times and the
  settings.
"""

import csv
import datetime
import io
import os
import platform

from rtc.common import checkpoints
from rtc.common import cli
from rtc.common import registry
from rtc.common import results
from rtc.common import sweep


def label(name: str, kind: str) -> str:
  """`dd_masked` -> 'discrete diffusion (masked)'."""
  preset = name[len(kind) + 1:]
  return registry.label(kind) + (f' ({preset})' if preset else '')


def write_combined(path, rows):
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=list(sweep.COLUMNS) + ['policy'])
  w.writeheader()
  for r in rows:
    w.writerow({k: r[k] for k in list(sweep.COLUMNS) + ['policy']})
  checkpoints.atomic_write_bytes(path, buf.getvalue().encode())


def figure_names(num_levels: int) -> tuple[str, ...]:
  if num_levels == 1:
    return ('solve_rate_vs_delay.png',)
  return ('mean_solve_rate_vs_delay.png', 'per_level_solve_rate_vs_delay.png')


def write(runner, kind_of) -> dict:
  """Writes the outputs above for `runner` (an rtc.quickstart.Quickstart);
  `kind_of(name)` is a policy name's registry kind. Returns their paths."""
  out = runner.out
  panels, combined = [], []
  for name in runner.names:
    rows = results.read_results(os.path.join(out, f'eval_{name}',
                                              'results.csv'))
    title = runner.config.get('labels', {}).get(name) or label(
        name, kind_of(name))
    panels.append((title, rows))
    combined += [dict(r, policy=name) for r in rows]
  csv_path = os.path.join(out, 'results.csv')
  write_combined(csv_path, combined)
  levels = sorted({r['level'] for r in combined})
  num_evals = int(runner.config.eval.num_evals)
  figures = figure_names(len(levels))
  pngs = [results.plot(panels, os.path.join(out, figures[0]),
                       num_evals=num_evals)]
  if len(levels) > 1:
    pngs.append(results.plot(panels, os.path.join(out, figures[1]),
                             per_level=True, num_evals=num_evals))
  path = os.path.join(out, 'report.md')
  checkpoints.atomic_write_bytes(
      path, text(runner, panels, levels, figures).encode())
  return {'results': csv_path, 'plots': pngs, 'report': path}


def _level(column: str) -> str:
  """'worlds/m/h0_unicycle.json' -> 'm/h0_unicycle'."""
  name = column[len('worlds/'):] if column.startswith('worlds/') else column
  return name[:-len('.json')] if name.endswith('.json') else name


def tables(panels, levels, num_evals: int) -> list[str]:
  """Markdown: per policy, the mean table with standard errors, then (with
  several levels) one row per level and method."""
  lines = []
  for title, rows in panels:
    summary = results.summarise(rows)
    errors = results.standard_errors(rows, summary, num_evals)
    lines += [f'### {title}', '',
              results.markdown_table(summary, errors=errors), '']
    if len(levels) > 1:
      per = {}
      for lv in levels:
        for method, by_delay in results.summarise(rows, level=lv).items():
          per[f'{_level(lv)} {method}'] = by_delay
      lines += ['Per level:', '',
                results.markdown_table(per, title='level, method'), '']
  return lines


def text(runner, panels, levels, figures) -> str:
  c = runner.config
  num_evals = int(c.eval.num_evals)
  where = (f'level `{_level(levels[0])}`' if len(levels) == 1 else
           f'mean over {len(levels)} levels ('
           + ', '.join(f'`{_level(lv)}`' for lv in levels) + ')')
  lines = [
      f'# rtc {runner.NAME} report', '',
      f'Date: {datetime.date.today().isoformat()}; machine: '
      f'{platform.machine()}, {os.cpu_count()} CPU cores, '
      f'{platform.python_implementation()} {platform.python_version()}.',
      '',
      '## Solve rate by method and inference delay',
      f'Execution horizon s = max(1, d); {num_evals} evaluation episodes per '
      f'point and level; {where}. ± is the standard error of the episode '
      'sampling (rtc.common.results.standard_errors); it does not cover '
      'other experts, data or training seeds.', '']
  lines += tables(panels, levels, num_evals)
  lines += [f'![solve rate vs delay]({f})' for f in figures]
  lines += ['', '## Stages', '', '| stage | wall time | outputs |',
            '|---|---|---|']
  for stage in runner.STAGES[:-1]:
    info = runner.finished(stage) or {}
    outs = ', '.join(
        os.path.relpath(v, runner.out) if isinstance(v, str) else
        f'{len(v)} file(s)' for v in info.get('outputs', {}).values())
    lines.append(f'| {stage} | '
                 f'{cli.format_duration(info.get("seconds", 0))} | '
                 f'{outs} |')
  total = runner.wall_seconds(
      lambda s: (runner.finished(s) or {}).get('seconds', 0)
      if s != 'report' else 0)
  together = ('policies side by side' if c.parallel else
              'one stage after another')
  lines += [f'| total | {cli.format_duration(total)} | wall time, '
            f'{together} |',
            '', '## Settings', '', '```',
            c.to_json_best_effort(indent=2, sort_keys=True), '```', '']
  return '\n'.join(lines)
