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

from configs import quickstart as quickstart_config

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
_LEVELS = flags.DEFINE_list(
    'levels', [], 'Only these levels (ids as in --config.expert.levels, '
    'e.g. m/h0_unicycle; default: every level of the files).')
_REFERENCE = flags.DEFINE_string(
    'reference_policy', 'flow', 'With --intervals: the policy every other '
    'is compared with (each policy minus it, for the same method).')
_INTERVALS = flags.DEFINE_bool(
    'intervals', False, 'Also the replicate statistics: interval and '
    'verdict tables, <output>_intervals.png and <output>_gain_over_naive.png.')


def only_levels(rows, levels, path):
  """The rows of `levels` (ids such as m/h0_unicycle; all if empty)."""
  if not levels:
    return rows
  have = sorted({report.level_id(r['level']) for r in rows})
  missing = [l for l in levels if l not in have]
  if missing:
    raise ValueError(f'--levels: {path} has no rows of {missing[0]!r} (it '
                     f'has {", ".join(have)}).')
  return [r for r in rows if report.level_id(r['level']) in levels]


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
    rows = only_levels(results.read_results(paths.resolve(f)),
                       _LEVELS.value, f)
    everything += rows
    panels += results.split_by_policy(label, rows)
  policies = {r.get('policy', '') for r in everything}
  if _INTERVALS.value and _REFERENCE.value not in policies:
    raise ValueError(f'--reference_policy={_REFERENCE.value!r} is not a '
                     f'policy of --results (they are '
                     f'{", ".join(sorted(policies))}).')
  out = results.plot(panels, paths.resolve(_OUTPUT.value), _HORIZON.value,
                     _PER_LEVEL.value)
  for label, rows in panels:
    print(results.markdown_table(results.summarise(rows, _HORIZON.value),
                                 label or 'method'))
  print(f'wrote {out}')
  if _INTERVALS.value:
    for policy, by_method in stats.estimates(everything).items():
      print(f'{policy or "method"}:\n{report.interval_table(by_method)}')
    print('\n'.join(report.verdict_table(
        everything, quickstart_config.training_time_bases(policies),
        reference=_REFERENCE.value)))
    stem = paths.resolve(_OUTPUT.value)
    stem = stem[:-len('.png')] if stem.endswith('.png') else stem
    for png in interval_plot.plot_all(
        everything, {}, [f'{stem}_intervals.png',
                         f'{stem}_gain_over_naive.png']):
      print(f'wrote {png}')


if __name__ == '__main__':
  cli.run(main)
