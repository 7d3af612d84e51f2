"""Tests for rtc.common.bc.results and the //rtc:plot binary."""

import csv
import os
import subprocess
import sys

from unittest import mock

from absl.testing import absltest

from rtc.common.base import cache
from rtc.common.base import paths
from rtc.common.bc import results
from rtc.common.bc import sweep

# Hand-written rows: two levels; naive is best at s=2 for d=1, realtime at s=1.
ROWS = [
    # level, delay, s, method, solved
    ('worlds/l/a.json', 0, 1, 'naive', 1.0),
    ('worlds/l/b.json', 0, 1, 'naive', 0.8),
    ('worlds/l/a.json', 1, 1, 'naive', 0.2),
    ('worlds/l/b.json', 1, 1, 'naive', 0.4),
    ('worlds/l/a.json', 1, 2, 'naive', 0.6),
    ('worlds/l/b.json', 1, 2, 'naive', 0.6),
    ('worlds/l/a.json', 0, 1, 'realtime', 1.0),
    ('worlds/l/b.json', 0, 1, 'realtime', 1.0),
    ('worlds/l/a.json', 1, 1, 'realtime', 0.9),
    ('worlds/l/b.json', 1, 1, 'realtime', 0.7),
    ('worlds/l/a.json', 1, 2, 'realtime', 0.5),
    ('worlds/l/b.json', 1, 2, 'realtime', 0.5),
]


def write_csv(path, rows=ROWS):
  with open(path, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=sweep.COLUMNS)
    w.writeheader()
    for level, d, s, m, solved in rows:
      w.writerow({'level': level, 'delay': d, 'execute_horizon': s,
                  'method': m, 'returned_episode_solved': solved,
                  'returned_episode_returns': 2 * solved - 1,
                  'returned_episode_lengths': 100})


class ResultsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path
    self.path = os.path.join(self.dir, 'results.csv')
    write_csv(self.path)

  def test_summarise_best_and_fixed_horizon(self):
    rows = results.read_results(self.path)
    best = results.summarise(rows)
    self.assertEqual(list(best), ['naive', 'realtime'])
    self.assertAlmostEqual(best['naive'][0][0], 0.9)
    self.assertEqual(best['naive'][1], (0.6, 2))
    self.assertAlmostEqual(best['realtime'][1][0], 0.8)
    self.assertEqual(best['realtime'][1][1], 1)
    fixed = results.summarise(rows, execute_horizon=1)
    self.assertAlmostEqual(fixed['naive'][1][0], 0.3)
    per_level = results.summarise(rows, level='worlds/l/a.json')
    self.assertAlmostEqual(per_level['realtime'][1][0], 0.9)
    table = results.markdown_table(best)
    self.assertIn('| naive | 0.900 | 0.600 |', table)

  def test_plot_writes_png(self):
    rows = results.read_results(self.path)
    out = results.plot([('flow', rows), ('dd', rows)],
                       os.path.join(self.dir, 'p.png'))
    with open(out, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    out = results.plot([('', rows)], os.path.join(self.dir, 'q.png'),
                       per_level=True)
    self.assertGreater(os.path.getsize(out), 1000)

  def test_a_method_keeps_its_colour_in_every_panel(self):
    import matplotlib.axes  # pylint: disable=g-import-not-at-top
    rows = results.read_results(self.path)
    fewer = [r for r in rows if r['method'] != rows[0]['method']]
    drawn = []
    original = matplotlib.axes.Axes.errorbar

    def spy(ax, *args, **kwargs):
      drawn.append((kwargs['label'], kwargs['color']))
      return original(ax, *args, **kwargs)

    with mock.patch.object(matplotlib.axes.Axes, 'errorbar', spy):
      results.plot([('all', rows), ('fewer', fewer)],
                   os.path.join(self.dir, 'c.png'))
    colours = {}
    for label, colour in drawn:
      self.assertEqual(colours.setdefault(label, colour), colour, label)
    self.assertLen(set(colours.values()), len(colours))
    self.assertLess(len({r['method'] for r in fewer}), len(colours))

  def test_plot_binary(self):
    out = os.path.join(self.dir, 'cli.png')
    proc = subprocess.run(
        [sys.executable, os.path.join(paths.repo_root(), 'rtc', 'plot.py'),
         f'--results={self.path}', f'--output={out}', '--execute_horizon=1'],
        capture_output=True, text=True, check=False,
        env={**os.environ, 'PYTHONPATH': paths.repo_root()})
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertTrue(os.path.exists(out))
    self.assertIn('| naive | 0.900 | 0.300 |', proc.stdout)
    bad = subprocess.run(
        [sys.executable, os.path.join(paths.repo_root(), 'rtc', 'plot.py'),
         f'--results={self.dir}/missing.csv'], capture_output=True, text=True,
        check=False, env={**os.environ, 'PYTHONPATH': paths.repo_root()})
    self.assertNotEqual(bad.returncode, 0)
    self.assertIn('missing.csv not found', bad.stderr)

  def test_combined_file_splits_by_policy(self):
    combined = os.path.join(self.dir, 'combined.csv')
    with open(combined, 'w', newline='') as f:
      w = csv.DictWriter(f, fieldnames=list(sweep.COLUMNS) + ['policy'])
      w.writeheader()
      for policy, scale in (('flow', 1.0), ('dd', 0.5)):
        for level, d, s, m, solved in ROWS:
          w.writerow({'level': level, 'delay': d, 'execute_horizon': s,
                      'method': m, 'returned_episode_solved': solved * scale,
                      'returned_episode_returns': 0,
                      'returned_episode_lengths': 100, 'policy': policy})
    panels = results.split_by_policy('', results.read_results(combined))
    self.assertEqual([label for label, _ in panels], ['dd', 'flow'])
    flow = results.summarise(panels[1][1], 1)
    dd = results.summarise(panels[0][1], 1)
    self.assertEqual(flow, results.summarise(results.read_results(self.path),
                                             1))
    self.assertNotEqual(dd, flow)
    # A file without the column stays one panel.
    self.assertLen(results.split_by_policy(
        'x', results.read_results(self.path)), 1)

  def test_bad_files(self):
    with self.assertRaisesRegex(FileNotFoundError, 'nope.csv'):
      results.read_results(os.path.join(self.dir, 'nope.csv'))
    bad = os.path.join(self.dir, 'bad.csv')
    with open(bad, 'w') as f:
      f.write('a,b\n1,2\n')
    with self.assertRaisesRegex(ValueError, 'lacks columns'):
      results.read_results(bad)


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
