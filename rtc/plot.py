r"""Plots solve rate against inference delay from results.csv files.

  bazel run //rtc:plot -- --results=eval_flow_output/results.csv \
      --output=solve_rate_vs_delay.png [--execute_horizon=N] [--per_level]

Several files (comma-separated) become side-by-side panels with a shared axis;
`--labels` names them. A file with a `policy` column (the quickstart's
combined results.csv) gives one panel per policy. Without --execute_horizon each point uses the best
execution horizon for that method and delay. Reads the earlier
implementation's results.csv files too (same columns).

`--intervals` (a combined results.csv of several replicates, e.g. the
benchmark's) also prints the tables of means with 95% intervals over
replicates and the verdicts (rtc.common.bc.stats, docs/benchmark.md), and
writes `<output>_intervals.png` and `<output>_gain_over_naive.png`.
"""

from absl import flags

from rtc import report
from rtc.common.base import options
from rtc.common.base import paths
from rtc.common.base import validate
from rtc.common.bc import interval_plot
from rtc.common.bc import results
from rtc.common.bc import stats
from rtc.common.cli import cli

_RESULTS = flags.DEFINE_string('results', '',
                               'results.csv path(s), comma-separated.')
_LABELS = flags.DEFINE_string('labels', '', 'Panel titles, comma-separated.')
_OUTPUT = flags.DEFINE_string('output', 'solve_rate_vs_delay.png',
                              'PNG to write.')
_HORIZON = flags.DEFINE_integer(
    'execute_horizon', None, 'Use this execution horizon (default: the best '
    'one per method and delay).')
_PER_LEVEL = flags.DEFINE_bool('per_level', False, 'One panel per level.')
_INTERVALS = flags.DEFINE_bool(
    'intervals', False, 'Also the replicate statistics: interval and '
    'verdict tables, <output>_intervals.png and <output>_gain_over_naive.png.')


def main(argv):
  del argv
  validate.check_flags(
      {'execute_horizon': validate.Rule(int, lo=1, optional=True)})
  files = options.str_list(_RESULTS.value)
  if not files:
    raise ValueError('--results is required: a results.csv written by an '
                     'evaluation (e.g. eval_flow_output/results.csv).')
  labels = options.str_list(_LABELS.value) or [
      f if len(files) > 1 else '' for f in files]
  if len(labels) != len(files):
    raise ValueError(f'--labels has {len(labels)} names for {len(files)} '
                     'files.')
  panels, everything = [], []
  for label, f in zip(labels, files):
    rows = results.read_results(paths.resolve(f))
    everything += rows
    panels += results.split_by_policy(label, rows)
  out = results.plot(panels, paths.resolve(_OUTPUT.value), _HORIZON.value,
                     _PER_LEVEL.value)
  for label, rows in panels:
    print(results.markdown_table(results.summarise(rows, _HORIZON.value),
                                 label or 'method'))
  print(f'wrote {out}')
  if _INTERVALS.value:
    for policy, by_method in stats.estimates(everything).items():
      print(f'{policy or "method"}:\n{report.interval_table(by_method)}')
    print('\n'.join(report.verdict_table(everything)))
    stem = paths.resolve(_OUTPUT.value)
    stem = stem[:-len('.png')] if stem.endswith('.png') else stem
    for png in interval_plot.plot_all(
        everything, {}, [f'{stem}_intervals.png',
                         f'{stem}_gain_over_naive.png']):
      print(f'wrote {png}')


if __name__ == '__main__':
  cli.run(main)
