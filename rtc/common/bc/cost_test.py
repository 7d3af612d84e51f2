"""Tests for the cost-adjusted sweep's bookkeeping (rtc.common.bc.cost,
rtc.common.bc.cost_report, the sweep's cost-adjusted points and columns)."""

import csv
import os

from absl.testing import absltest
from absl.testing import parameterized
from ml_collections import config_dict

from rtc.common.bc import cost
from rtc.common.bc import cost_report
from rtc.common.bc import stats
from rtc.common.bc import sweep
from rtc.common.env import rollout

DEVICE = 'cpu: test'


def latency_row(policy, method, median, kind='dd', sampling='', batch=1,
                reference='flow', p90=None):
  return {'device': DEVICE, 'batch': batch, 'policy': policy, 'kind': kind,
          'method': method, 'sampling': sampling, 'num_steps': 5,
          'delay': 2, 'execute_horizon': 2, 'timed_calls': 50,
          'median_s': median, 'p90_s': median * 1.2 if p90 is None else p90,
          'reference': reference}


def latency_rows():
  """flow naive 2 ms (the reference); dd naive 1.4 ms, realtime 3.4 ms."""
  return [latency_row('flow', 'naive', 0.002, kind='flow'),
          latency_row('flow', 'realtime', 0.0034, kind='flow'),
          latency_row('dd', 'naive', 0.0014, sampling='early_start=True'),
          latency_row('dd', 'realtime', 0.0034, sampling='early_start=True'),
          latency_row('dd', 'naive', 0.0014, sampling='early_start=False'),
          latency_row('dd', 'realtime', 0.008, sampling='early_start=False')]


class DelayMappingTest(parameterized.TestCase):

  # Hand-computed: d = round(d0 * ratio) with halves up, capped at H/2 = 4.
  @parameterized.parameters(
      (0.7, [0, 1, 1, 2, 3]),  # 0.7, 1.4, 2.1, 2.8.
      (1.0, [0, 1, 2, 3, 4]),
      (1.7, [0, 2, 3, 4, 4]),  # 1.7, 3.4, 5.1 -> 4 (cap), 6.8 -> 4.
      (4.0, [0, 4, 4, 4, 4]),  # 4, 8, 12, 16 -> 4.
  )
  def test_ratios_at_h8(self, ratio, expected):
    self.assertEqual([cost.adjusted_delay(d0, ratio, 8) for d0 in range(5)],
                     expected)

  def test_halves_round_up_and_odd_h_caps_down(self):
    # 1.5, 3.0, 4.5, 6.0, 7.5 at H = 16: Python's round would give 2, 3, 4,
    # 6, 8; halves go up here.
    self.assertEqual([cost.adjusted_delay(d0, 1.5, 16) for d0 in range(1, 6)],
                     [2, 3, 5, 6, 8])
    self.assertEqual([cost.adjusted_delay(d0, 1.7, 7) for d0 in range(5)],
                     [0, 2, 3, 3, 3])  # H // 2 = 3.

  def test_plan_gives_s_max_1_d(self):
    self.assertEqual(cost.plan([0, 1, 2, 4], {'naive': 0.3, 'bid': 4.0}, 8),
                     {'naive': [(0, 0, 1), (1, 0, 1), (2, 1, 1), (4, 1, 1)],
                      'bid': [(0, 0, 1), (1, 4, 4), (2, 4, 4), (4, 4, 4)]})

  @parameterized.parameters(0.0, -1.0, float('nan'), float('inf'))
  def test_bad_ratio_refused(self, ratio):
    with self.assertRaisesRegex(ValueError, 'positive finite'):
      cost.adjusted_delay(1, ratio, 8)


class LatencyCsvTest(absltest.TestCase):

  def write(self, rows, name='latency.csv'):
    path = os.path.join(self.create_tempdir().full_path, name)
    return cost.write_csv(path, cost.with_ratios(rows))

  def assert_one_line(self, error, pattern):
    self.assertRegex(str(error), pattern)
    self.assertNotIn('\n', str(error))

  def test_ratios_from_median_times(self):
    path = self.write(latency_rows())
    rows = cost.read_csv(path)
    got = cost.ratios(rows, path, 'dd', 'early_start=False',
                      ['naive', 'realtime'])
    self.assertAlmostEqual(got['naive'], 0.7)
    self.assertAlmostEqual(got['realtime'], 4.0)
    got = cost.ratios(rows, path, 'dd', 'early_start=True', ['realtime'])
    self.assertAlmostEqual(got['realtime'], 1.7)
    got = cost.ratios(rows, path, 'flow', '', ['naive', 'realtime'])
    self.assertEqual(got['naive'], 1.0)
    self.assertAlmostEqual(got['realtime'], 1.7)

  def test_written_ratio_columns(self):
    with open(self.write(latency_rows()), newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertEqual(tuple(rows[0]), cost.CSV_COLUMNS)
    dd_rt = rows[5]
    self.assertAlmostEqual(float(dd_rt['ratio_to_flow_naive']), 4.0)
    self.assertAlmostEqual(float(dd_rt['ratio_to_own_naive']), 0.008 / 0.0014,
                           places=4)

  def test_missing_method_refused(self):
    path = self.write(latency_rows())
    with self.assertRaises(ValueError) as e:
      cost.ratios(cost.read_csv(path), path, 'dd', 'early_start=True',
                  ['naive', 'bid'])
    self.assert_one_line(e.exception, "no 'bid' row for policy 'dd'")

  def test_other_policy_refused(self):
    path = self.write(latency_rows())
    with self.assertRaises(ValueError) as e:
      cost.ratios(cost.read_csv(path), path, 'dd_masked', '', ['naive'])
    self.assert_one_line(e.exception, "no rows for policy 'dd_masked'.*"
                         "latency_policy")

  def test_other_sampling_batch_or_no_reference_refused(self):
    path = self.write(latency_rows())
    rows = cost.read_csv(path)
    with self.assertRaisesRegex(ValueError, 'sampling options'):
      cost.ratios(rows, path, 'dd', 'early_start=None', ['naive'])
    with self.assertRaisesRegex(ValueError, 'no rows at batch 8'):
      cost.ratios(rows, path, 'dd', 'early_start=True', ['naive'], batch=8)
    path = self.write(latency_rows()[2:], 'no_reference.csv')
    with self.assertRaisesRegex(ValueError, 'no flow naive row for the '
                                "reference policy 'flow'"):
      cost.ratios(cost.read_csv(path), path, 'dd', 'early_start=True',
                  ['naive'])

  def test_bad_files_refused_with_one_line(self):
    cases = {
        'nan': (dict(median=float('nan')), 'median_s=.nan.'),
        'zero': (dict(median=0.0), 'median_s=.0.'),
        'negative_p90': (dict(median=0.001, p90=-1.0), 'p90_s=.-1'),
    }
    for name, (kwargs, pattern) in cases.items():
      rows = latency_rows()
      rows[3] = latency_row('dd', 'realtime', sampling='early_start=True',
                            **kwargs)
      path = self.write(rows, f'{name}.csv')
      with self.assertRaises(ValueError) as e:
        cost.read_csv(path)
      self.assert_one_line(e.exception, f'row 5 has {pattern}.*positive')
    rows = latency_rows() + [latency_row('dd', 'beam_search', 0.001)]
    path = self.write(rows, 'unknown.csv')
    with self.assertRaises(ValueError) as e:
      cost.read_csv(path)
    self.assert_one_line(e.exception, "unknown method 'beam_search'")
    rows = latency_rows()
    rows[0] = dict(rows[0], device='gpu: other')
    with self.assertRaisesRegex(ValueError, 'mixes devices'):
      cost.read_csv(self.write(rows, 'devices.csv'))
    path = self.write(latency_rows(), 'columns.csv')
    with open(path, 'w') as f:
      f.write('device,batch\ncpu,1\n')
    with self.assertRaisesRegex(ValueError, 'lacks columns'):
      cost.read_csv(path)
    with self.assertRaisesRegex(FileNotFoundError, 'not found'):
      cost.read_csv(path + '.missing')


class OptionsTest(absltest.TestCase):

  def config(self, **kwargs):
    c = config_dict.ConfigDict(dict(
        cost_adjusted=True, latency_csv='', measure_latency=True,
        execute_horizons='min'))
    c.update(kwargs)
    return c

  def test_check_options(self):
    cost.check_options(self.config())
    cost.check_options(self.config(latency_csv='a.csv',
                                   measure_latency=False))
    cost.check_options(self.config(cost_adjusted=False,
                                   measure_latency=False,
                                   execute_horizons='1,2'))
    with self.assertRaisesRegex(ValueError, 'needs a latency source'):
      cost.check_options(self.config(measure_latency=False))
    with self.assertRaisesRegex(ValueError, "execute_horizons='1,2'"):
      cost.check_options(self.config(execute_horizons='1,2'))

  def test_policy_name(self):
    self.assertEqual(cost.policy_name('/a/logs-dd/quickstart'), 'dd')
    self.assertEqual(cost.policy_name('/a/logs-dd_uniform/run/'),
                     'dd_uniform')
    self.assertEqual(cost.policy_name('/a/runs/my_run'), 'my_run')

  def test_sampling_options(self):
    self.assertEqual(cost.sampling_variants({'early_start': False, 'x': 1}),
                     [{}, {'early_start': True}])
    self.assertEqual(cost.sampling_variants({'x': 1}), [{}])
    cfg = type('C', (), {'early_start': True})()
    self.assertEqual(cost.sampling_key(cfg), 'early_start=True')
    self.assertEqual(cost.sampling_key(object()), '')
    # An evaluation's recorded model dict: the same key as its config.
    self.assertEqual(cost.sampling_key({'early_start': False, 'x': 1}),
                     'early_start=False')
    self.assertEqual(cost.sampling_key({'early_stop': True,
                                        'adaptive_unmasking': False}),
                     'early_stop=True;adaptive_unmasking=False')


class SweepColumnsTest(absltest.TestCase):

  def test_cost_points(self):
    methods = [rollout.Method('naive'), rollout.Method('realtime')]
    spec = sweep.SweepSpec(methods, [0, 2, 4], None, 4, 5,
                           ratios={'naive': 0.7, 'realtime': 1.7})
    got = [(m.name, d, s, x['d0'], x['latency_ratio'])
           for m, d, s, x in spec.points(8)]
    self.assertEqual(got, [('naive', 0, 1, 0, '0.7'),
                           ('naive', 1, 1, 2, '0.7'),
                           ('naive', 3, 3, 4, '0.7'),
                           ('realtime', 0, 1, 0, '1.7'),
                           ('realtime', 3, 3, 2, '1.7'),
                           ('realtime', 4, 4, 4, '1.7')])
    with self.assertRaisesRegex(ValueError, 'out of range'):
      sweep.SweepSpec(methods, [5], None, 4, 5,
                      ratios={'naive': 1, 'realtime': 1}).points(8)

  def test_results_file_with_and_without_cost_columns(self):
    root = self.create_tempdir().full_path
    old = os.path.join(root, 'old.csv')
    with open(old, 'w') as f:
      f.write(','.join(sweep.COLUMNS) + '\n1,20,1,1,naive,worlds/a,1\n')
    f = sweep.ResultsFile(old)  # Older files load.
    self.assertTrue(f.has('worlds/a', 1, 1, 'naive'))
    self.assertFalse(f.has('worlds/a', 1, 1, 'naive', d0=1))
    path = os.path.join(root, 'results.csv')
    f = sweep.ResultsFile(path)
    row = dict(returned_episode_returns=1.0, returned_episode_lengths=20.0,
               returned_episode_solved=1.0, delay=1, method='naive',
               level='worlds/a', execute_horizon=1, d0=2,
               latency_ratio='0.7')
    f.append([row])
    g = sweep.ResultsFile(path)
    self.assertTrue(g.has('worlds/a', 1, 1, 'naive', d0=2))
    self.assertFalse(g.has('worlds/a', 1, 1, 'naive', d0=1))
    with open(path, newline='') as fh:
      rows = list(csv.DictReader(fh))
    self.assertEqual(tuple(rows[0]), sweep.COLUMNS + cost.RESULT_COLUMNS)
    self.assertEqual((rows[0]['d0'], rows[0]['latency_ratio']), ('2', '0.7'))


def result_row(method, d0, solved, level='worlds/a', replicate=None,
               policy='dd'):
  row = {'policy': policy, 'method': method, 'd0': str(d0),
         'delay': str(cost.adjusted_delay(d0, 0.7, 8)),
         'latency_ratio': '0.7', 'level': level,
         'returned_episode_solved': str(solved)}
  if replicate is not None:
    row['replicate'] = replicate
  return row


class ReportTest(absltest.TestCase):

  def test_table_without_replicates(self):
    rows = [result_row('naive', 0, 1.0), result_row('naive', 0, 0.5, 'b'),
            result_row('naive', 2, 0.25)]
    table = cost_report.markdown_table(rows)
    lines = table.splitlines()
    self.assertEqual(lines[0],
                     '| policy method | latency ratio | d0=0 | d0=2 |')
    # Level mean (1.0 + 0.5) / 2; d0 = 2 runs at round(1.4) = 1.
    self.assertEqual(lines[2],
                     '| dd naive | 0.70 | 0.750 (d=0) | 0.250 (d=1) |')

  def test_replicate_intervals(self):
    # Replicate means 0.5, 0.7, 0.9: mean 0.7, sd 0.2, half width
    # 4.303 * 0.2 / sqrt(3) = 0.4969.
    rows = [result_row('realtime', 1, v, replicate=str(i))
            for i, v in enumerate((0.5, 0.7, 0.9))]
    cell = cost_report.summarise(rows)[('dd', 'realtime')][1]
    self.assertAlmostEqual(cell.mean, 0.7)
    self.assertAlmostEqual(cell.high - cell.mean, 0.4969, places=3)
    self.assertEqual((cell.replicates, cell.delay), (3, 1))
    self.assertIn('0.700 [0.203, 1.197] (d=1)',
                  cost_report.markdown_table(rows))

  def test_read_rows_and_plot(self):
    root = self.create_tempdir().full_path
    path = os.path.join(root, 'results.csv')
    f = sweep.ResultsFile(path)
    f.append([dict(returned_episode_returns=1.0, returned_episode_lengths=2.0,
                   returned_episode_solved=s, delay=d, method='naive',
                   level='worlds/a', execute_horizon=max(1, d), d0=d0,
                   latency_ratio='0.7')
              for d0, d, s in ((0, 0, 1.0), (2, 1, 0.5))])
    rows = cost_report.read_rows(path, policy='flow', replicate='r0')
    self.assertEqual({(r['policy'], r['replicate']) for r in rows},
                     {('flow', 'r0')})
    md, png = cost_report.write(rows, os.path.join(root, 'out'))
    with open(png, 'rb') as fh:
      self.assertEqual(fh.read(8), b'\x89PNG\r\n\x1a\n')
    with open(md) as fh:
      self.assertIn('| flow naive | 0.70 | 1.000 (d=0) | 0.500 (d=1) |',
                    fh.read())
    self.assertEqual(sorted(os.listdir(os.path.join(root, 'out'))),
                     ['cost_adjusted.md', 'cost_adjusted.png'])
    with self.assertRaisesRegex(ValueError, 'not written by a sweep with'):
      old = os.path.join(root, 'old.csv')
      with open(old, 'w') as fh:
        fh.write(','.join(sweep.COLUMNS) + '\n')
      cost_report.read_rows(old)



def sweep_rows(policy, method, by_delay, replicate=0):
  """A standard sweep's rows at s = max(1, d) (one level), plus a decoy at
  another horizon that the derivation must not pick."""
  out = [{'policy': policy, 'method': method, 'delay': d,
          'execute_horizon': max(1, d), 'level': 'worlds/a',
          'replicate': replicate, 'returned_episode_solved': v}
         for d, v in by_delay.items()]
  out.append(dict(out[-1], execute_horizon=7, returned_episode_solved=-1.0))
  return out


class DerivedTest(parameterized.TestCase):
  """Cost-adjusted rows from a standard sweep: d0 -> d = round(d0 x r)."""

  RATES = {0: 1.0, 1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6}

  def test_rows_at_the_mapped_delays(self):
    rows = (sweep_rows('flow', 'naive', self.RATES) +
            sweep_rows('flow', 'realtime', self.RATES) +
            sweep_rows('dd', 'naive', self.RATES))
    out = cost_report.derived_rows(
        rows, {('flow', 'naive'): 1.0, ('flow', 'realtime'): 1.7,
               ('dd', 'naive'): 0.7}, chunk_size=8)
    got = {(r['policy'], r['method'], r['d0']): (r['delay'],
                                                 r['returned_episode_solved'])
           for r in out}
    # realtime 1.7: d0 1 -> 2 (1.7), 2 -> 3 (3.4), 3 -> 4 (5.1 capped).
    self.assertEqual([got[('flow', 'realtime', d0)] for d0 in range(5)],
                     [(0, 1.0), (2, 0.8), (3, 0.7), (4, 0.6), (4, 0.6)])
    # 0.7: d0 1 -> 1 (0.7), 2 -> 1 (1.4), 3 -> 2 (2.1), 4 -> 3 (2.8).
    self.assertEqual([got[('dd', 'naive', d0)][0] for d0 in range(5)],
                     [0, 1, 1, 2, 3])
    self.assertEqual([got[('flow', 'naive', d0)][0] for d0 in range(5)],
                     list(range(5)))
    self.assertLen(out, 15)
    self.assertEqual({r['latency_ratio'] for r in out}, {'1', '1.7', '0.7'})
    table = cost_report.markdown_table(out)
    self.assertIn('| flow realtime | 1.70 | 1.000 (d=0) | 0.800 (d=2) | '
                  '0.700 (d=3) | 0.600 (d=4) | 0.600 (d=4) |', table)

  def test_paired_at_equal_compute(self):
    # Two replicates; at d0 = 2 flow realtime (ratio 1.7) runs at d = 3:
    # 0.7 - flow naive's 0.8 = -0.1 in both replicates.
    rows = []
    for rep in (0, 1):
      rows += sweep_rows('flow', 'naive', self.RATES, rep)
      rows += sweep_rows('flow', 'realtime', self.RATES, rep)
    out = cost_report.derived_rows(
        rows, {('flow', 'naive'): 1.0, ('flow', 'realtime'): 1.7}, 8)
    found = {(c.label, c.delay): c.difference
             for c in stats.comparisons(cost_report.by_d0(out))}
    diff = found[('flow: realtime - naive', 2)]
    self.assertAlmostEqual(diff.mean, -0.1, places=12)
    self.assertEqual(diff.replicates, 2)

  @parameterized.named_parameters(
      ('no_ratio', {('flow', 'naive'): 1.0}, r'^No latency ratio for flow '
       r'realtime: measure it with `bazel run //rtc/bench:latency`\.$'),
      ('missing_delay', {('flow', 'naive'): 1.0, ('flow', 'realtime'): 3.0},
       r'^flow realtime: no row at d = 3, s = 3, needed for d0 = 1 at '
       r'latency ratio 3; sweep delays 0\.\.4 with execute_horizons=min\.$'))
  def test_refused_with_one_line(self, ratios, pattern):
    rows = (sweep_rows('flow', 'naive', self.RATES) +
            sweep_rows('flow', 'realtime', {0: 1.0, 1: 0.9, 2: 0.8}))
    with self.assertRaisesRegex(ValueError, pattern):
      cost_report.derived_rows(rows, ratios, 8, d0s=[0, 1])


if __name__ == '__main__':
  absltest.main()
