"""Tests for rtc.common.bc.sweep's bookkeeping (points and results.csv)."""

import csv
import os

from absl.testing import absltest

from rtc.common.bc import sweep


class SweepTest(absltest.TestCase):

  def test_points(self):
    self.assertEqual(sweep.sweep_points([0], 8),
                     [(0, s) for s in range(1, 9)])
    self.assertEqual(sweep.sweep_points([3], 8), [(3, 3), (3, 4), (3, 5)])
    self.assertEqual(sweep.sweep_points([0, 1, 2, 3, 4], 8, 'min'),
                     [(0, 1), (1, 1), (2, 2), (3, 3), (4, 4)])
    self.assertEqual(sweep.sweep_points([1, 2], 8, [2, 5]),
                     [(1, 2), (1, 5), (2, 2), (2, 5)])
    with self.assertRaisesRegex(ValueError, 'out of range'):
      sweep.sweep_points([5], 8)
    with self.assertRaisesRegex(ValueError, 'No'):
      sweep.sweep_points([3], 8, [1])

  def test_spec_validation(self):
    spec = dict(methods=[], delays=[0], execute_horizons=None, num_evals=4,
                num_steps=5)
    self.assertEqual(sweep.SweepSpec(**spec).num_steps, 5)
    with self.assertRaisesRegex(ValueError, 'num_flow_steps must be >= 1'):
      sweep.SweepSpec(**{**spec, 'num_steps': 0})
    with self.assertRaisesRegex(ValueError, 'num_evals must be >= 1'):
      sweep.SweepSpec(**{**spec, 'num_evals': 0})

  def test_results_file_appends_atomically_and_reloads(self):
    path = os.path.join(self.create_tempdir().full_path, 'results.csv')
    f = sweep.ResultsFile(path)
    row = dict(returned_episode_returns=1.0, returned_episode_lengths=20.0,
               returned_episode_solved=1.0, delay=1, method='naive',
               level='worlds/s/a.json', execute_horizon=2)
    f.append([row])
    g = sweep.ResultsFile(path)
    self.assertTrue(g.has('worlds/s/a.json', 1, 2, 'naive'))
    self.assertFalse(g.has('worlds/s/a.json', 1, 3, 'naive'))
    with open(path, newline='') as fh:
      self.assertEqual(tuple(csv.DictReader(fh).fieldnames), sweep.COLUMNS)
    self.assertEqual(os.listdir(os.path.dirname(path)), ['results.csv'])
    bad = os.path.join(os.path.dirname(path), 'bad.csv')
    with open(bad, 'w') as fh:
      fh.write('x,y\n')
    with self.assertRaisesRegex(ValueError, 'bad.csv lacks columns'):
      sweep.ResultsFile(bad)


if __name__ == '__main__':
  absltest.main()
