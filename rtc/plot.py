r"""Plots solve rate against inference delay from results.csv files.

  bazel run //rtc:plot -- --results=eval_flow_output/results.csv \
      --output=solve_rate_vs_delay.png [--execute_horizon=N] [--per_level]

Several files (comma-separated) become side-by-side panels with a shared axis;
`--labels` names them. A file with a `policy` column (the quickstart's
combined results.csv) gives one panel per policy. Without --execute_horizon each point uses the best
execution horizon for that method and delay. Reads the earlier
implementation's results.csv files too (same columns).
"""

from absl import flags

from rtc.common import cli
from rtc.common import options
from rtc.common import paths
from rtc.common import results
from rtc.common import validate

_RESULTS = flags.DEFINE_string('results', '',
                               'results.csv path(s), comma-separated.')
_LABELS = flags.DEFINE_string('labels', '', 'Panel titles, comma-separated.')
_OUTPUT = flags.DEFINE_string('output', 'solve_rate_vs_delay.png',
                              'PNG to write.')
_HORIZON = flags.DEFINE_integer(
    'execute_horizon', None, 'Use this execution horizon (default: the best '
    'one per method and delay).')
_PER_LEVEL = flags.DEFINE_bool('per_level', False, 'One panel per level.')


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
  panels = []
  for label, f in zip(labels, files):
    panels += results.split_by_policy(label,
                                      results.read_results(paths.resolve(f)))
  out = results.plot(panels, paths.resolve(_OUTPUT.value), _HORIZON.value,
                     _PER_LEVEL.value)
  for label, rows in panels:
    print(results.markdown_table(results.summarise(rows, _HORIZON.value),
                                 label or 'method'))
  print(f'wrote {out}')


if __name__ == '__main__':
  cli.run(main)
