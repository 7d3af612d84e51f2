"""rtc.report on a hand-made record of two replicates (no training): the
combined results.csv's provenance, the interval and verdict tables, the
execution-horizon text and the Settings section, which must equal what the
stages recorded."""

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys

from absl.testing import absltest

from rtc.common.base import paths
from rtc.common.bc import cost
from rtc.common.bc import results
from rtc.common.bc import sweep
from rtc.common.testlib import stats_testing
from rtc import report

POLICIES = ('flow', 'dd')
T1 = 12.706204736174698  # t(0.975, 1 degree of freedom).


def _write_json(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(value, f)


def make_record(out) -> report.Record:
  """Two replicates of flow and dd, each with the files its stages write."""
  rows = stats_testing.rows()
  reps = []
  for r in (0, 1):
    folder = out if r == 0 else os.path.join(out, f'replicate_{r}')
    seed = 1000 * r
    expert_dir = os.path.join(folder, 'logs-expert', 'benchmark')
    _write_json(os.path.join(expert_dir, 'config.json'),
                {'seed': seed, 'num_updates': 2})
    runs, evals = {}, {}
    for p in POLICIES:
      runs[p] = os.path.join(folder, f'logs-{p}', 'benchmark')
      _write_json(os.path.join(runs[p], 'config.json'),
                  {'kind': p, 'seed': seed + 3, 'num_epochs': 1,
                   'model': {'num_layers': 1}})
      eval_dir = os.path.join(folder, f'eval_{p}')
      _write_json(os.path.join(eval_dir, 'eval_settings.json'),
                  {'seed': seed + 5, 'num_evals': 100, 'run_dir': runs[p]})
      evals[p] = os.path.join(eval_dir, 'results.csv')
      stats_testing.write_csv(
          evals[p], [x for x in rows if x['policy'] == p and
                     x['replicate'] == r], columns=sweep.COLUMNS)
    reps.append(report.Replicate(
        index=r, seeds={'expert': seed, 'data': seed + 1, 'eval': seed + 2,
                        'policy': {p: seed + 3 for p in POLICIES}},
        expert_dir=expert_dir, data_settings={'seed': seed + 1},
        runs=runs, evals=evals))
  return report.Record(
      name='benchmark', out=out, policies=POLICIES,
      titles={'flow': 'flow', 'dd': 'discrete diffusion'},
      replicates=tuple(reps), stages=(('expert', {'seconds': 61}),),
      wall_seconds=61, parallel=True)


class ReportTest(absltest.TestCase):

  def test_cost_adjusted_evaluations_get_their_table(self):
    out = absltest.get_default_test_tmpdir() + '/report_cost'
    record = make_record(out)
    self.assertNotIn('## Cost-adjusted', self.text)  # Plain sweeps: none.
    columns = sweep.COLUMNS + ('d0', 'latency_ratio')
    for rep in record.replicates:
      with open(rep.evals['flow'], newline='') as f:
        rows = list(csv.DictReader(f))
      for r in rows:  # Flow naive is the reference: d = d0, ratio 1.
        r['d0'], r['latency_ratio'] = r['delay'], '1'
      stats_testing.write_csv(rep.evals['flow'], rows, columns=columns)
    with open(report.write(record)['report']) as f:
      text = f.read()
    section = text[text.index('## Cost-adjusted'):text.index('## Stages')]
    # Flow naive at d0 = 2: replicate means 0.50, 0.60 (stats_testing).
    t1 = 12.706204736174698
    self.assertIn(f'| flow naive | 1.00 | 0.550 [{0.55 - t1 * 0.05:.3f}, '
                  f'{0.55 + t1 * 0.05:.3f}] (d=2) |', section)
    self.assertIn('From cost-adjusted evaluation sweeps', section)
    self.assertNotIn('dd', section.split('\n\n')[3])  # dd ran plain.
    self.assertTrue(os.path.exists(os.path.join(out, 'cost_adjusted.png')))

  def test_cost_adjusted_table_derived_from_a_latency_csv(self):
    out = absltest.get_default_test_tmpdir() + '/report_derived'
    latency = os.path.join(out, 'latency.csv')
    os.makedirs(out, exist_ok=True)
    # Ratios to flow naive: flow realtime 1.2, dd naive 0.8, dd realtime
    # 1.1; at d0 = 2 each runs at d = round(2 x ratio) = 2 (the rows' d).
    with open(latency, 'w') as f:
      f.write(','.join(cost.CSV_COLUMNS) + '\n')
      for policy, kind, method, ms in (
          ('flow', 'flow', 'naive', 1.0), ('flow', 'flow', 'realtime', 1.2),
          ('dd', 'dd', 'naive', 0.8), ('dd', 'dd', 'realtime', 1.1)):
        f.write(f'cpu: test,1,{policy},{kind},{method},,5,2,2,50,{ms / 1e3},'
                f'{ms / 1e3},flow,,\n')
    record = dataclasses.replace(make_record(out), latency_csv=latency)
    with open(report.write(record)['report']) as f:
      text = f.read()
    section = text[text.index('## Cost-adjusted'):text.index('## Stages')]
    self.assertIn('Derived from the standard sweep', section)
    self.assertIn(f'`{latency}` at batch 1', section)  # Not below the cwd.
    self.assertIn('| comparison | d0 | difference', section)
    # dd realtime: replicate means 0.25, 0.32 (stats_testing).
    self.assertIn(f'| dd realtime | 1.10 | 0.285 [{0.285 - T1 * 0.035:.3f}, '
                  f'{0.285 + T1 * 0.035:.3f}] (d=2) |', section)
    # The paired verdicts at equal compute: flow realtime - naive at d0 2.
    self.assertIn(f'| flow: realtime - naive | 2 | +0.300 '
                  f'[{0.3 - T1 * 0.02:+.3f}, {0.3 + T1 * 0.02:+.3f}] | better |',
                  section)
    # A latency CSV without dd's realtime: one line, before any file.
    with open(latency) as f:
      lines = f.read().splitlines()
    with open(latency, 'w') as f:
      f.write('\n'.join(lines[:-1]) + '\n')
    os.remove(os.path.join(out, 'report.md'))
    with self.assertRaisesRegex(ValueError, r"has no 'realtime' row for "
                                r"policy 'dd' at batch 1"):
      report.write(record)
    self.assertFalse(os.path.exists(os.path.join(out, 'report.md')))

  def test_one_level_gets_one_figure(self):
    # The quickstart's case (one level): solve_rate_vs_delay.png, one panel
    # per policy, and no mean or per-level figure; several levels get those
    # two instead (the benchmark; //rtc:benchmark_test runs it).
    out = absltest.get_default_test_tmpdir() + '/report_one_level'
    record = make_record(out)
    for rep in record.replicates:
      for path in rep.evals.values():
        with open(path, newline='') as f:
          rows = list(csv.DictReader(f))
        stats_testing.write_csv(path, [r for r in rows
                                       if r['level'] == rows[0]['level']],
                                columns=sweep.COLUMNS)
    paths_written = report.write(record)
    with open(paths_written['report']) as f:
      text = f.read()
    with open(os.path.join(out, 'solve_rate_vs_delay.png'), 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    self.assertIn('![solve rate vs delay](solve_rate_vs_delay.png)', text)
    for name in report.figure_names(2):
      self.assertFalse(os.path.exists(os.path.join(out, name)), name)
      self.assertNotIn(name, text)
    self.assertTrue(os.path.exists(os.path.join(self.out, name)), name)

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out = absltest.get_default_test_tmpdir() + '/report'
    cls.record = make_record(cls.out)
    cls.paths = report.write(cls.record)
    with open(cls.paths['report']) as f:
      cls.text = f.read()

  def test_results_csv_carries_provenance(self):
    with open(self.paths['results'], newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
    self.assertEqual(tuple(reader.fieldnames), results.COMBINED_COLUMNS)
    self.assertLen(rows, 16)
    r = next(x for x in rows if x['policy'] == 'dd' and
             x['replicate'] == '1')
    self.assertEqual((r['expert_seed'], r['data_seed'], r['policy_seed'],
                      r['eval_seed'], r['num_evals']),
                     ('1000', '1001', '1003', '1005', '100'))
    self.assertEqual(r['run_dir'], 'replicate_1/logs-dd/benchmark')
    hashes = {(x['policy'], x['replicate']): x['settings_hash']
              for x in rows}
    self.assertLen(set(hashes.values()), 4)  # Settings differ per pair.
    self.assertTrue(all(re.fullmatch('[0-9a-f]{10}', h)
                        for h in hashes.values()))
    # It reads back with its replicates.
    self.assertEqual({x['replicate'] for x in
                      results.read_results(self.paths['results'])}, {0, 1})

  def test_tables_carry_intervals_and_verdicts(self):
    t1 = 12.706204736174698  # Student t 97.5% point, 1 degree of freedom.
    flow = self.text[self.text.index('### flow'):
                     self.text.index('### discrete')]
    half = t1 * 0.05
    self.assertIn(f'| naive | 0.550 [{0.55 - half:.3f}, {0.55 + half:.3f}] '
                  '± 0.024 |', flow)
    self.assertIn(f'| flow: realtime - naive | 2 | +0.300 '
                  f'[{0.3 - t1 * 0.02:+.3f}, {0.3 + t1 * 0.02:+.3f}] | '
                  'better |', self.text)
    self.assertIn('| naive: dd - flow | 2 | +0.000 ', self.text)
    self.assertRegex(self.text, r'\| naive: dd - flow \| 2 \| [^|]+\| '
                     r'no detectable difference \|')
    self.assertRegex(self.text, r'\| realtime: dd - flow \| 2 \| [^|]+\| '
                     r'worse \|')
    # dd's gain over its naive minus flow's: -0.58, -0.55.
    self.assertIn(f'| realtime - naive: dd - flow | 2 | -0.565 '
                  f'[{-0.565 - t1 * 0.015:+.3f}, {-0.565 + t1 * 0.015:+.3f}] '
                  '| worse |', self.text)
    self.assertIn('2 replicate(s)', self.text)
    self.assertIn('100 evaluation episodes per point and level', self.text)
    for name in report.INTERVAL_FIGURES:
      self.assertIn(f']({name})', self.text)
      self.assertTrue(os.path.exists(os.path.join(self.out, name)))

  def test_settings_are_the_recorded_ones(self):
    settings = self.text[self.text.index('## Settings'):]
    blocks = re.findall(r'#### (.+?) \(`(.+?)`\)\n\n```json\n(.*?)\n```',
                        settings, re.S)
    found = {who: (where, json.loads(body)) for who, where, body in blocks}
    self.assertCountEqual(found, ['expert', 'data', 'flow training',
                                  'flow evaluation', 'dd training',
                                  'dd evaluation'])
    for who, (where, value) in found.items():
      if who == 'data':
        self.assertEqual(value, self.record.replicates[0].data_settings)
        continue
      with open(os.path.join(self.out, where)) as f:
        self.assertEqual(value, json.load(f), who)
    self.assertIn('### Replicate 1: what differs from replicate 0',
                  settings)
    self.assertIn('* dd training: seed: 1003 (replicate 0: 3)', settings)

  def test_horizon_text_comes_from_the_rows(self):
    rows = [{'delay': d, 'execute_horizon': s} for d, s in
            ((0, 1), (2, 2), (4, 4))]
    self.assertEqual(report.horizon_text(rows),
                     'Execution horizon s = max(1, d)')
    self.assertIn('Execution horizon s = max(1, d)', self.text)
    rows = [{'delay': d, 'execute_horizon': 1} for d in (0, 2)]
    self.assertEqual(report.horizon_text(rows),
                     'Execution horizon s = 1 at d = 0, s = 1 at d = 2')
    rows += [{'delay': 2, 'execute_horizon': 3}]
    self.assertEqual(report.horizon_text(rows),
                     'Execution horizons d = 0: s in {1}; d = 2: s in '
                     '{1, 3} (each point at its best s)')


  def test_plot_binary_intervals(self):
    # //rtc:plot --intervals on the combined file: the same verdicts.
    png = os.path.join(self.out, 'cli.png')
    proc = subprocess.run(
        [sys.executable, os.path.join(paths.repo_root(), 'rtc', 'plot.py'),
         f'--results={self.paths["results"]}', f'--output={png}',
         '--intervals'], capture_output=True, text=True, check=False,
        env={**os.environ, 'PYTHONPATH': paths.repo_root()})
    self.assertEqual(proc.returncode, 0, proc.stderr)
    for line in report.verdict_table(
        results.read_results(self.paths['results'])):
      self.assertIn(line, proc.stdout)
    self.assertIn('| flow: realtime - naive | 2 | +0.300 ', proc.stdout)
    for name in ('cli_intervals.png', 'cli_gain_over_naive.png'):
      self.assertTrue(os.path.exists(os.path.join(self.out, name)), name)
    # --levels: level a alone (stats_testing): flow realtime - naive is
    # 0.30 (0.70 - 0.40) and 0.34 (0.84 - 0.50).
    proc = subprocess.run(
        [sys.executable, os.path.join(paths.repo_root(), 'rtc', 'plot.py'),
         f'--results={self.paths["results"]}', f'--output={png}',
         '--intervals', '--levels=l/a'], capture_output=True, text=True,
        check=False, env={**os.environ, 'PYTHONPATH': paths.repo_root()})
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('| flow: realtime - naive | 2 | +0.320 ', proc.stdout)
    # --reference_policy=dd: flow minus dd at level a, naive: 0.40 - 0.55
    # and 0.50 - 0.55.
    proc = subprocess.run(
        [sys.executable, os.path.join(paths.repo_root(), 'rtc', 'plot.py'),
         f'--results={self.paths["results"]}', f'--output={png}',
         '--intervals', '--levels=l/a', '--reference_policy=dd'],
        capture_output=True, text=True, check=False,
        env={**os.environ, 'PYTHONPATH': paths.repo_root()})
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('| naive: flow - dd | 2 | -0.100 ', proc.stdout)
    # A reference policy the file lacks: one line, no PNG written.
    other = os.path.join(self.out, 'none.png')
    proc = subprocess.run(
        [sys.executable, os.path.join(paths.repo_root(), 'rtc', 'plot.py'),
         f'--results={self.paths["results"]}', f'--output={other}',
         '--intervals', '--reference_policy=bid'], capture_output=True,
        text=True, check=False,
        env={**os.environ, 'PYTHONPATH': paths.repo_root()})
    self.assertEqual(proc.returncode, 2)
    self.assertRegex(proc.stderr.strip().splitlines()[-1],
                     r"^error: --reference_policy='bid' is not a policy of "
                     r"--results \(they are dd, flow\)\.$")
    self.assertFalse(os.path.exists(other))
    proc = subprocess.run(
        [sys.executable, os.path.join(paths.repo_root(), 'rtc', 'plot.py'),
         f'--results={self.paths["results"]}', f'--output={png}',
         '--levels=l/c'], capture_output=True, text=True,
        check=False, env={**os.environ, 'PYTHONPATH': paths.repo_root()})
    self.assertEqual(proc.returncode, 2)
    self.assertRegex(proc.stderr.strip().splitlines()[-1],
                     r"^error: --levels: \S+results\.csv has no rows of "
                     r"'l/c' \(it has l/a, l/b\)\.$")


if __name__ == '__main__':
  absltest.main()
