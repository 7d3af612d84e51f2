"""The cost-adjusted table and plot: solve rate against d0, one line per
policy x method (docs/cost_adjusted.md).

The input is result rows of cost-adjusted sweeps (rtc.common.bc.sweep with
`SweepSpec.ratios`), as dicts with string or number values:

  method, d0, delay (the d it ran at), latency_ratio, level,
  returned_episode_solved, and optionally policy and replicate.

`read_rows(path, policy, replicate)` reads one results.csv into such rows
(rtc.common.bc.results.read_results drops d0 and latency_ratio). Then

  table = cost_report.markdown_table(rows)     # a Markdown table
  cost_report.plot(rows, 'cost_adjusted.png')  # a PNG
  md, png = cost_report.write(rows, out_dir)   # both, into out_dir

Each cell is the solve rate averaged over levels. Rows with a `replicate`
column (several replicates of the whole benchmark) give the mean over
replicates and a 95% t interval of it (the replicates' spread only).

`derived_rows(rows, ratios, chunk_size)` makes such rows from a standard
sweep instead (delays 0..H/2 at s = max(1, d)): a policy x method's cell at
d0 is its row at d = round(d0 x ratio), which is the point a cost-adjusted
sweep would run. `by_d0(rows)` turns cost-adjusted rows into rows whose
`delay` is d0, for the paired verdicts of rtc.common.bc.stats at equal
compute.
"""

import collections
import csv
import dataclasses
import os
from typing import Optional

from rtc.common.bc import checkpoints
from rtc.common.bc import cost
from rtc.common.bc import results
from rtc.common.bc import stats

METHOD_ORDER = results.METHOD_ORDER


@dataclasses.dataclass(frozen=True)
class Cell:
  mean: float  # Solve rate: over levels, then over replicates.
  low: Optional[float]  # 95% interval over replicates (None: one).
  high: Optional[float]
  replicates: int
  delay: int  # The d it ran at.
  ratio: float  # latency / flow naive's latency.


def read_rows(path: str, policy: str = '',
              replicate: Optional[str] = None) -> list[dict]:
  """The rows of a cost-adjusted results.csv, tagged with `policy` (unless
  the file has a policy column) and `replicate` (if given)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Results file {path} not found.')
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    missing = [c for c in cost.RESULT_COLUMNS
               if c not in (reader.fieldnames or ())]
    if missing:
      raise ValueError(f'{path} lacks columns {missing}: not written by a '
                       'sweep with --config.cost_adjusted=True.')
    rows = list(reader)
  for r in rows:
    r.setdefault('policy', policy)
    if not r['policy']:
      r['policy'] = policy
    if replicate is not None:
      r['replicate'] = replicate
  return rows


def derived_rows(rows, ratios: dict, chunk_size: int,
                 d0s: Optional[list] = None) -> list[dict]:
  """Cost-adjusted rows from a standard sweep's `rows` (dicts with policy,
  method, delay, execute_horizon, level, returned_episode_solved and
  optionally replicate). `ratios`: {(policy, method): latency / flow naive's
  latency}; `d0s`: flow naive's delays (default: the rows' delays). Each
  output row is the input row at d = cost.adjusted_delay(d0, ratio, H),
  s = max(1, d), with d0 and latency_ratio added. ValueError (one line) if
  a ratio or a needed row is missing."""
  index = collections.defaultdict(list)
  for r in rows:
    d = int(r['delay'])
    if int(r['execute_horizon']) == max(1, d):
      index[(r.get('policy', ''), r['method'], d)].append(r)
  if d0s is None:
    d0s = sorted({int(r['delay']) for r in rows})
  out = []
  for policy, method in sorted({k[:2] for k in index}, key=lambda k: _order(
      k + (0,))):
    if (policy, method) not in ratios:
      raise ValueError(f'No latency ratio for {policy} {method}: measure it '
                       f'with {cost.BENCH}.')
    ratio = ratios[(policy, method)]
    for d0 in d0s:
      d = cost.adjusted_delay(d0, ratio, chunk_size)
      found = index.get((policy, method, d))
      if not found:
        raise ValueError(
            f'{policy} {method}: no row at d = {d}, s = {max(1, d)}, needed '
            f'for d0 = {d0} at latency ratio {ratio:.3g}; sweep delays 0..'
            f'{chunk_size // 2} with execute_horizons=min.')
      out += [dict(r, d0=d0, delay=d, latency_ratio=f'{ratio:.4g}')
              for r in found]
  return out


def by_d0(rows) -> list[dict]:
  """Cost-adjusted rows with `delay` := d0 (one horizon), so that
  rtc.common.bc.stats pairs methods and policies at equal compute."""
  return [dict(r, delay=int(float(r['d0'])), execute_horizon=0,
               returned_episode_solved=float(r['returned_episode_solved']))
          for r in rows]


def summarise(rows) -> dict:
  """{(policy, method): {d0: Cell}}, policies and methods in order."""
  by_rep = collections.defaultdict(list)
  runs = {}
  for r in rows:
    if r.get('d0') in (None, ''):
      raise ValueError(f'A row without d0 ({r.get("method")}, delay '
                       f'{r.get("delay")}): not from a cost-adjusted sweep.')
    key = (r.get('policy', '') or '', r['method'], int(float(r['d0'])))
    by_rep[key + (str(r.get('replicate', '')),)].append(
        float(r['returned_episode_solved']))
    runs.setdefault(key, (int(float(r['delay'])),
                          float(r['latency_ratio'])))
  means = collections.defaultdict(list)
  for (*key, _), values in by_rep.items():
    means[tuple(key)].append(sum(values) / len(values))
  out = collections.defaultdict(dict)
  for key in sorted(means, key=_order):
    iv = stats.t_interval(means[key])  # Student t over replicates.
    low, high = (iv.lo, iv.hi) if iv.replicates > 1 else (None, None)
    delay, ratio = runs[key]
    out[key[:2]][key[2]] = Cell(iv.mean, low, high, iv.replicates, delay,
                                ratio)
  return dict(out)


def _order(key):
  policy, method, d0 = key
  rank = (METHOD_ORDER.index(method) if method in METHOD_ORDER
          else len(METHOD_ORDER))
  return (policy, rank, method, d0)


def _label(policy: str, method: str) -> str:
  return f'{policy} {method}'.strip()


def markdown_table(rows) -> str:
  """Policy x method as rows, d0 as columns; a cell is the solve rate (with
  its 95% interval over replicates) and the d it ran at."""
  summary = summarise(rows)
  d0s = sorted({d0 for cells in summary.values() for d0 in cells})
  lines = ['| policy method | latency ratio | ' +
           ' | '.join(f'd0={d}' for d in d0s) + ' |',
           '|---|---|' + '---|' * len(d0s)]
  for (policy, method), cells in summary.items():
    row = []
    for d0 in d0s:
      c = cells.get(d0)
      if c is None:
        row.append('')
        continue
      text = f'{c.mean:.3f}'
      if c.low is not None:
        text += f' [{c.low:.3f}, {c.high:.3f}]'
      row.append(f'{text} (d={c.delay})')
    ratio = next(iter(cells.values())).ratio
    lines.append(f'| {_label(policy, method)} | {ratio:.2f} | ' +
                 ' | '.join(row) + ' |')
  replicates = max(c.replicates for cells in summary.values()
                   for c in cells.values())
  note = (f'Mean over levels and {replicates} replicates, [95% t interval '
          'over replicates]' if replicates > 1 else 'Mean over levels')
  return '\n'.join(lines) + (f'\n\n{note}; (d = the delay the method ran '
                             'at: round(d0 x latency ratio), capped at H/2).')


def plot(rows, output: str, title: str = '') -> str:
  """Solve rate against d0, one line per policy x method (error bars: the
  95% interval over replicates); writes a PNG atomically, returns it."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  summary = summarise(rows)
  policies = sorted({p for p, _ in summary})
  styles = ['-', '--', ':', '-.']
  fig, ax = plt.subplots(figsize=(7.5, 4.5))
  for (policy, method), cells in summary.items():
    d0s = sorted(cells)
    means = [cells[d].mean for d in d0s]
    err = None
    if any(cells[d].low is not None for d in d0s):
      err = [[cells[d].mean - (cells[d].low if cells[d].low is not None
                               else cells[d].mean) for d in d0s],
             [(cells[d].high if cells[d].high is not None else
               cells[d].mean) - cells[d].mean for d in d0s]]
    colour = (f'C{METHOD_ORDER.index(method)}' if method in METHOD_ORDER
              else None)
    ax.errorbar(d0s, means, yerr=err, marker='o', capsize=3, color=colour,
                linestyle=styles[policies.index(policy) % len(styles)],
                label=f'{_label(policy, method)} (x{cells[d0s[0]].ratio:.2f})')
  ax.set_xlabel('d0: flow naive sampling\'s inference delay')
  ax.set_ylabel('solve rate (mean over levels)')
  ax.set_xticks(sorted({d for cells in summary.values() for d in cells}))
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, ncol=2)
  ax.set_title(title or 'Cost-adjusted: each method at the delay its own '
               'latency causes', fontsize=10)
  return results.save_figure(fig, output)


def write(rows, output_dir: str, name: str = 'cost_adjusted') -> tuple:
  """Writes `<name>.md` (the table) and `<name>.png` (the plot) into
  `output_dir` atomically; returns their paths."""
  md = os.path.join(output_dir, f'{name}.md')
  checkpoints.atomic_write_bytes(md, (markdown_table(rows) + '\n').encode())
  return md, plot(rows, os.path.join(output_dir, f'{name}.png'))
