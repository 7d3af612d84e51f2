r"""Adds later evaluations of a benchmark's policies to its rows.

  bazel run //rtc/bench:merge_rows -- --benchmark=<benchmark output_dir> \
      --evals=<dir> --policy=flow[,dd,...] [--suffix=_legacy] \
      [--as_is=flow_training_time,...] --output=<merged.csv>

For each policy, `<evals>/r<r>/<policy>/results.csv` holds an evaluation of replicate r's
`<policy>` (the run directory `<benchmark>/[replicate_<r>/]logs-<kind>/...`,
the benchmark's evaluation seed), e.g. other methods or another scoring.
The output holds the benchmark's `results.csv` rows of `<policy>`, then
those rows, each with the benchmark rows' provenance columns of its
replicate, policy `<policy><suffix>` and an empty settings_hash (its
settings are the evaluation's own eval_settings.json). A suffix keeps them
apart as another policy (`rtc.plot --reference_policy=<policy>` pairs them
with the benchmark's rows); none adds them as more methods of the policy.
Every replicate of the policy must have its file; nothing is written
before all of them are read. `--as_is` policies (e.g. training-time RTC,
evaluated by the benchmark alone) follow with their benchmark rows only.
"""

import csv
import io
import os

from absl import flags

from rtc.common.base import options
from rtc.common.base import paths
from rtc.common.bc import checkpoints
from rtc.common.cli import cli

_BENCHMARK = flags.DEFINE_string(
    'benchmark', '', 'A benchmark output directory (its results.csv).')
_EVALS = flags.DEFINE_string(
    'evals', '', 'Directory with r<r>/<policy>/results.csv per replicate.')
_POLICY = flags.DEFINE_string(
    'policy', '', 'Benchmark policies, comma-separated, e.g. flow,dd.')
_SUFFIX = flags.DEFINE_string(
    'suffix', '', "Appended to the added rows' policy ('' = same policy).")
_AS_IS = flags.DEFINE_string(
    'as_is', '', 'Benchmark policies, comma-separated, whose rows follow '
    'unchanged (no later evaluations).')
_OUTPUT = flags.DEFINE_string('output', '', 'The merged CSV to write.')


def _read(path: str) -> list[dict]:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} not found.')
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def benchmark_rows(benchmark: str, policy: str, flag: str = 'policy'):
  """The benchmark's results.csv rows of `policy` (at least one)."""
  path = os.path.join(benchmark, 'results.csv')
  rows = [r for r in _read(path) if r.get('policy') == policy]
  if not rows:
    raise ValueError(f'{path} has no rows of --{flag}={policy!r}.')
  return rows


def merge(benchmark: str, evals: str, policy: str, suffix: str) -> tuple:
  """(columns, rows): the benchmark's rows of `policy`, then the added ones."""
  rows = benchmark_rows(benchmark, policy)
  columns = list(rows[0])
  added = []
  for rep in sorted({r['replicate'] for r in rows}, key=int):
    ref = next(r for r in rows if r['replicate'] == rep)
    extra = os.path.join(evals, f'r{rep}', policy, 'results.csv')
    new = _read(extra)
    unknown = sorted(set(new[0]) - set(columns)) if new else []
    if not new or unknown:
      raise ValueError(f'{extra}: not an evaluation results.csv '
                       f'({"no rows" if not new else "columns " + str(unknown)}'
                       ').')
    added += [{**ref, **r, 'policy': policy + suffix, 'settings_hash': ''}
              for r in new]
  return columns, rows + added


def main(argv):
  del argv
  for name, flag in (('benchmark', _BENCHMARK), ('evals', _EVALS),
                     ('policy', _POLICY), ('output', _OUTPUT)):
    if not flag.value:
      raise ValueError(f'--{name} is required (see --help).')
  policies = options.str_list(_POLICY.value)
  if not policies:
    raise ValueError(f'--policy={_POLICY.value!r} names no policy.')
  rows = []
  for policy in policies:
    columns, mine = merge(paths.resolve(_BENCHMARK.value),
                          paths.resolve(_EVALS.value), policy, _SUFFIX.value)
    rows += mine
  for policy in options.str_list(_AS_IS.value):
    rows += benchmark_rows(paths.resolve(_BENCHMARK.value), policy, 'as_is')
  out = paths.resolve(_OUTPUT.value)
  buf = io.StringIO()
  writer = csv.DictWriter(buf, columns)
  writer.writeheader()
  writer.writerows(rows)
  checkpoints.atomic_write_bytes(out, buf.getvalue().encode())
  print(f'wrote {out}: {len(rows)} rows')


if __name__ == '__main__':
  cli.run(main)
