"""Reading and summarising results.csv files, and plotting them.

Any results.csv rtc writes (or the earlier implementation wrote: the same
columns) has one row per (level, delay, execute_horizon, method) with the
first-episode return, length and solve rate (rtc.common.bc.sweep).

`summarise` averages the solve rate over levels for each (method, delay):
at a chosen execution horizon, or at the best one per (method, delay) (the
horizon with the highest level-averaged solve rate). `plot` draws solve rate
against delay, one line per method, one panel per results file (shared y
axis), or one panel per level.
"""

import collections
import csv
import os
from typing import Optional

import numpy as np

from rtc.common.bc import columns

METHOD_ORDER = ('naive', 'realtime', 'bid', 'hard_masking', 'training_time')
# The combined results.csv of a quickstart or benchmark (rtc.report): every
# row says which policy and replicate it is, the seeds of that replicate's
# stages, its episodes per point, its training run directory and a short
# hash of the settings that produced it. A file without `replicate` (older
# rtc) reads as replicate 0.
PROVENANCE = ('replicate', 'expert_seed', 'data_seed', 'policy_seed',
              'eval_seed', 'num_evals', 'run_dir', 'settings_hash')
COMBINED_COLUMNS = columns.COLUMNS + ('policy',) + PROVENANCE
_INTEGERS = ('replicate', 'expert_seed', 'data_seed', 'policy_seed',
             'eval_seed', 'num_evals')


def _provenance(r: dict) -> dict:
  """The combined file's extra columns of a row (those present)."""
  out = {'replicate': 0}
  for k in PROVENANCE:
    if r.get(k) not in (None, ''):
      out[k] = int(float(r[k])) if k in _INTEGERS else r[k]
  return out


def read_results(path: str, flag: str = '--results') -> list[dict]:
  """The rows of a results.csv; `flag` is the option that named `path`."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Results file {path} not found: run an '
                            f'evaluation first or check {flag}.')
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    missing = set(columns.COLUMNS) - set(reader.fieldnames or ())
    if missing:
      raise ValueError(f'{path} lacks columns {sorted(missing)}: not a '
                       'results.csv written by an evaluation sweep.')
    rows = []
    for i, r in enumerate(reader):
      try:
        rows.append({
            'level': r['level'], 'method': r['method'],
            'delay': int(float(r['delay'])),
            'execute_horizon': int(float(r['execute_horizon'])),
            **{k: float(r[k]) for k in columns.METRICS},
            # The quickstart's combined file says which policy a row is.
            **({'policy': r['policy']} if r.get('policy') else {}),
            **_provenance(r)})
      except (TypeError, ValueError):
        raise ValueError(f'{path}: row {i + 2} is malformed ({r}).') from None
  if not rows:
    raise ValueError(f'{path} holds no rows.')
  return rows


def split_by_policy(label: str, rows: list[dict]) -> list[tuple]:
  """[(label, rows)], one panel per `policy` when a file holds several."""
  policies = sorted({r['policy'] for r in rows if 'policy' in r})
  if len(policies) <= 1:
    return [(label, rows)]
  return [(f'{label} {p}'.strip(), [r for r in rows if r.get('policy') == p])
          for p in policies]


def method_colour(method: str) -> str:
  """One matplotlib colour per method, the same in every panel and figure
  (METHOD_ORDER's, then others by name)."""
  if method in METHOD_ORDER:
    return f'C{METHOD_ORDER.index(method)}'
  return f'C{(len(METHOD_ORDER) + sum(map(ord, method))) % 10}'


def _methods(rows):
  present = {r['method'] for r in rows}
  return [m for m in METHOD_ORDER if m in present] + sorted(
      present - set(METHOD_ORDER))


def summarise(rows, execute_horizon=None, level=None,
              metric='returned_episode_solved'):
  """{method: {delay: (mean over levels, execute_horizon used)}}."""
  if level is not None:
    rows = [r for r in rows if r['level'] == level]
  groups = collections.defaultdict(list)
  for r in rows:
    groups[(r['method'], r['delay'], r['execute_horizon'])].append(r[metric])
  out = collections.defaultdict(dict)
  for (method, delay, s), values in groups.items():
    if execute_horizon is not None and s != execute_horizon:
      continue
    mean = float(np.mean(values))
    best = out[method].get(delay)
    if best is None or mean > best[0]:
      out[method][delay] = (mean, s)
  return {m: dict(sorted(out[m].items())) for m in _methods(rows) if m in out}


def standard_errors(rows, summary: dict, num_evals: int,
                    metric='returned_episode_solved') -> dict:
  """{method: {delay: standard error}} of `summary`'s level means.

  Episode sampling only: each level's solve rate p_l over `num_evals`
  independent episodes has variance p_l (1 - p_l) / num_evals, so the mean
  over L levels has sqrt(sum_l p_l (1 - p_l) / num_evals) / L. It does not
  cover the spread from other experts, data or training seeds.
  """
  out = {}
  for method, by_delay in summary.items():
    out[method] = {}
    for delay, (_, s) in by_delay.items():
      p = np.array([r[metric] for r in rows if r['method'] == method and
                    r['delay'] == delay and r['execute_horizon'] == s])
      out[method][delay] = float(
          np.sqrt(np.sum(p * (1 - p)) / num_evals) / len(p))
  return out


def markdown_table(summary: dict, title: str = 'method',
                   errors: Optional[dict] = None) -> str:
  """Methods as rows, delays as columns; `errors` adds ' ± SE' to cells."""
  delays = sorted({d for v in summary.values() for d in v})
  lines = [f'| {title} | ' + ' | '.join(f'd={d}' for d in delays) + ' |',
           '|---|' + '---|' * len(delays)]
  for method, by_delay in summary.items():
    cells = []
    for d in delays:
      cell = f'{by_delay[d][0]:.3f}' if d in by_delay else ''
      if cell and errors is not None:
        cell += f' ± {errors[method][d]:.3f}'
      cells.append(cell)
    lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def save_figure(fig, output: str) -> str:
  """Writes a matplotlib figure to PNG `output` atomically, closes it and
  returns the path."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  tmp = output + '.tmp.png'
  fig.savefig(tmp, dpi=110)
  plt.close(fig)
  os.replace(tmp, output)
  return output


def plot(panels, output: str, execute_horizon=None, per_level=False,
         ylabel='solve rate', num_evals: Optional[int] = None) -> str:
  """panels: [(title, rows)]. Writes a PNG; returns its path.

  `num_evals` (episodes per point) adds standard-error bars
  (`standard_errors`).
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  if per_level:
    expanded = []
    for title, rows in panels:
      for lv in sorted({r['level'] for r in rows}):
        name = lv.replace('worlds/', '').replace('.json', '')
        expanded.append((f'{title} {name}'.strip(),
                         [r for r in rows if r['level'] == lv]))
    panels = expanded
  n = len(panels)
  cols = min(n, 4)
  nrows = -(-n // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows),
                           sharey=True, squeeze=False)
  for ax, (title, rows) in zip(axes.flat, panels):
    summary = summarise(rows, execute_horizon)
    errors = (standard_errors(rows, summary, num_evals) if num_evals
              else None)
    for method, by_delay in summary.items():
      delays = sorted(by_delay)
      ax.errorbar(delays, [by_delay[d][0] for d in delays],
                  yerr=None if errors is None else
                  [errors[method][d] for d in delays], marker='o',
                  capsize=3, label=method, color=method_colour(method))
    ax.set_title(title)
    ax.set_xlabel('inference delay d')
    ax.grid(alpha=0.3)
    all_delays = sorted({r['delay'] for r in rows})
    ax.set_xticks(all_delays)
  for ax in axes.flat[n:]:
    ax.axis('off')
  for ax in axes[:, 0]:
    ax.set_ylabel(ylabel)
  axes.flat[0].legend(fontsize=8)
  horizon = ('best execution horizon per point' if execute_horizon is None
             else f'execution horizon s={execute_horizon}')
  fig.suptitle(f'Solve rate vs inference delay ({horizon}; mean over levels)'
               if not per_level else f'Solve rate vs inference delay '
               f'({horizon})', fontsize=10)
  return save_figure(fig, output)
