r"""Adds later evaluations of a benchmark's policies to its rows.

  bazel run //rtc/bench:merge_rows -- --benchmark=<benchmark output_dir> \
      --evals=<dir> --policy=flow[,dd,...] [--suffix=_legacy] \
      [--as_is=flow_training_time,...] \
      [--other_run=<dir> --other_policy=dd_training_time,...] \
      --output=<merged.csv>

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

`--other_policy` rows come unchanged from `--other_run`, a benchmark run of
the same replicates that trained other policies on the same experts and
data (a copy of this run's output directory, run with other
`--config.policies`). Every replicate of theirs must be one of this
benchmark's with the same expert and data seeds, and the rows of every
policy both runs hold must be equal where both have them (at least one
row): that is what pairs the added policies with this run's by replicate.
`--evals` and `--policy` go together; either may be left out when
`--as_is` or `--other_policy` names policies.
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
_OTHER_RUN = flags.DEFINE_string(
    'other_run', '', 'Another benchmark output directory of the same '
    'replicates, experts and data (for --other_policy).')
_OTHER_POLICY = flags.DEFINE_string(
    'other_policy', '', "--other_run's policies, comma-separated, whose "
    'rows follow unchanged.')
_OUTPUT = flags.DEFINE_string('output', '', 'The merged CSV to write.')
# What makes two rows the same measurement.
_ROW_KEY = ('replicate', 'policy', 'method', 'delay', 'execute_horizon',
            'level')
_REPLICATE_SEEDS = ('expert_seed', 'data_seed')


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


def other_rows(benchmark: str, other: str, policies) -> list[dict]:
  """`other`'s rows of `policies`, checked to pair with `benchmark`'s."""
  mine_path = os.path.join(benchmark, 'results.csv')
  other_path = os.path.join(other, 'results.csv')
  mine, theirs = _read(mine_path), _read(other_path)
  if not mine or not theirs or set(mine[0]) != set(theirs[0]):
    raise ValueError(f'{other_path}: not rows of the same form as '
                     f'{mine_path} (--other_run must be a benchmark output '
                     'directory).')
  added = []
  for policy in policies:
    if any(r['policy'] == policy for r in mine):
      raise ValueError(f'{mine_path} already has rows of '
                       f'--other_policy={policy!r}.')
    added += benchmark_rows(other, policy, 'other_policy')
  seeds = {r['replicate']: tuple(r.get(k) for k in _REPLICATE_SEEDS)
           for r in mine}
  for r in added:
    rep = r['replicate']
    if seeds.get(rep) != tuple(r.get(k) for k in _REPLICATE_SEEDS):
      raise ValueError(
          f'{other_path}: replicate {rep} (expert and data seeds '
          f'{tuple(r.get(k) for k in _REPLICATE_SEEDS)}) is not one of '
          f'{mine_path}\'s ({seeds.get(rep, "none")}): --other_run must '
          'share this run\'s replicates.')
  index = {tuple(r[k] for k in _ROW_KEY): r for r in mine}
  shared = 0
  for r in theirs:
    ref = index.get(tuple(r[k] for k in _ROW_KEY))
    if ref is None or r['policy'] in policies:
      continue
    if ref['returned_episode_solved'] != r['returned_episode_solved']:
      raise ValueError(
          f'{other_path}: {r["policy"]} {r["method"]} at d = {r["delay"]} '
          f'on {r["level"]}, replicate {r["replicate"]}, solved '
          f'{r["returned_episode_solved"]} where {mine_path} has '
          f'{ref["returned_episode_solved"]}: not the same experts, data '
          'and policies.')
    shared += 1
  if not shared:
    raise ValueError(f'{other_path} shares no row with {mine_path}: nothing '
                     'shows that they hold the same experts and data.')
  return added


def main(argv):
  del argv
  for name, flag in (('benchmark', _BENCHMARK), ('output', _OUTPUT)):
    if not flag.value:
      raise ValueError(f'--{name} is required (see --help).')
  if bool(_EVALS.value) != bool(_POLICY.value):
    raise ValueError('--evals and --policy go together: give both or '
                     'neither.')
  if bool(_OTHER_RUN.value) != bool(_OTHER_POLICY.value):
    raise ValueError('--other_run and --other_policy go together: give '
                     'both or neither.')
  policies = options.str_list(_POLICY.value)
  if _POLICY.value and not policies:
    raise ValueError(f'--policy={_POLICY.value!r} names no policy.')
  if not (policies or _AS_IS.value or _OTHER_POLICY.value):
    raise ValueError('Nothing to write: name policies with --policy, '
                     '--as_is or --other_policy.')
  benchmark = paths.resolve(_BENCHMARK.value)
  first = _read(os.path.join(benchmark, 'results.csv'))
  if not first:
    raise ValueError(f'{os.path.join(benchmark, "results.csv")} has no rows.')
  columns = list(first[0])
  rows = []
  for policy in policies:
    _, mine = merge(benchmark, paths.resolve(_EVALS.value), policy,
                    _SUFFIX.value)
    rows += mine
  for policy in options.str_list(_AS_IS.value):
    rows += benchmark_rows(benchmark, policy, 'as_is')
  if _OTHER_POLICY.value:
    rows += other_rows(benchmark, paths.resolve(_OTHER_RUN.value),
                       options.str_list(_OTHER_POLICY.value))
  out = paths.resolve(_OUTPUT.value)
  buf = io.StringIO()
  writer = csv.DictWriter(buf, columns)
  writer.writeheader()
  writer.writerows(rows)
  checkpoints.atomic_write_bytes(out, buf.getvalue().encode())
  print(f'wrote {out}: {len(rows)} rows')


if __name__ == '__main__':
  cli.run(main)
