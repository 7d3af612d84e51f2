"""Plots of replicate statistics (rtc.common.bc.stats; rtc.report).

* `plot_means`: per policy, the mean solve rate over levels and replicates
  against delay, one line per method, with 95% intervals over replicates;
* `plot_gains`: per policy, the paired gain of each method over naive
  against delay, with its 95% interval and a line at 0.
"""

import math

from rtc.common.bc import results
from rtc.common.bc import stats


def _figure(n):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  cols = min(n, 4)
  nrows = -(-n // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows),
                           sharey=True, squeeze=False)
  return plt, fig, axes


def _save(plt, fig, axes, n, ylabel, title, output) -> str:
  for ax in axes.flat[n:]:
    ax.axis('off')
  for ax in axes[:, 0]:
    ax.set_ylabel(ylabel)
  if axes.flat[0].get_legend_handles_labels()[0]:
    axes.flat[0].legend(fontsize=8)
  fig.suptitle(title, fontsize=10)
  return results.save_figure(fig, output)


def _errorbar(ax, label, points):
  """points: [(delay, Interval)]; bars span the interval (none: no bar)."""
  delays = [d for d, _ in points]
  means = [iv.mean for _, iv in points]
  bars = [[0 if math.isnan(iv.lo) else iv.mean - iv.lo for _, iv in points],
          [0 if math.isnan(iv.hi) else iv.hi - iv.mean for _, iv in points]]
  ax.errorbar(delays, means, yerr=bars, marker='o', capsize=3, label=label,
              color=results.method_colour(label))
  ax.set_xticks(sorted(set(delays)))
  ax.set_xlabel('inference delay d')
  ax.grid(alpha=0.3)


def plot_means(rows, titles: dict, output: str) -> str:
  """Means with 95% intervals over replicates, one panel per policy."""
  est = stats.estimates(rows)
  plt, fig, axes = _figure(len(est))
  for ax, (policy, by_method) in zip(axes.flat, est.items()):
    for method, by_delay in by_method.items():
      _errorbar(ax, method, sorted(by_delay.items()))
    ax.set_title(titles.get(policy, policy))
  return _save(plt, fig, axes, len(est), 'solve rate',
               'Solve rate vs inference delay (mean over levels and '
               'replicates, 95% interval over replicates)', output)


def plot_gains(rows, titles: dict, output: str) -> str:
  """Paired gains over naive with 95% intervals, one panel per policy."""
  gains = {}
  for c in stats.comparisons(rows):
    if c.of_methods:
      gains.setdefault(c.policy, {}).setdefault(c.method, []).append(
          (c.delay, c.difference))
  names = [p for p in stats.policies(rows) if p in gains] or ['']
  plt, fig, axes = _figure(len(names))
  for ax, policy in zip(axes.flat, names):
    for method, points in gains.get(policy, {}).items():
      _errorbar(ax, method, sorted(points, key=lambda p: p[0]))
    ax.axhline(0.0, color='k', lw=0.8)
    ax.set_title(titles.get(policy, policy))
  return _save(plt, fig, axes, len(names), 'solve rate - naive',
               'Paired gain over naive vs inference delay (95% interval '
               'over replicates)', output)


def plot_all(rows, titles: dict, outputs) -> list[str]:
  """[plot_means, plot_gains] to outputs[0], outputs[1]."""
  return [plot_means(rows, titles, outputs[0]),
          plot_gains(rows, titles, outputs[1])]
