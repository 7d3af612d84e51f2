"""Tests for rtc.common.bc.sweep's bookkeeping (points and results.csv)."""

import csv
import os

from absl.testing import absltest

from configs import dd as dd_config
from configs import flow as flow_config
from rtc.common.bc import sharding
from rtc.common.bc import sweep
from rtc.common.core import registry
from rtc.common.env import envs
from rtc.common.env import rollout
from rtc.common.testlib import testing
from rtc.dd import sampling_ops


class SweepTest(absltest.TestCase):

  def test_equal_programs_share_one_evaluator(self):
    # No program is traced here (jit traces on the first call): this checks
    # which calls get the same jitted function, so that an evaluation after
    # another of an equal policy on levels of the same physics and sizes
    # skips tracing Kinetix's step.
    levels = envs.load_levels((testing.TINY_LEVEL,))
    other = envs.load_levels(('s/h1_thrust_over_ball.json',))
    shard = sharding.LevelSharding(1)
    make = registry.make_policy('flow')
    model = testing.shrink_model(flow_config.get_config().model)
    a, b = make(model, 10, 4), make(model, 10, 4)
    both = (rollout.Method('naive'), rollout.Method('realtime'))
    fn = sweep.make_evaluator(a, levels, both, 4, 2, shard)
    # Another policy object of equal options, other level states, a list.
    self.assertIs(sweep.make_evaluator(b, other, list(both), 4, 2, shard), fn)
    for changed in (
        sweep.make_evaluator(a, levels, both, 8, 2, shard),
        sweep.make_evaluator(a, levels, both, 4, 3, shard),
        sweep.make_evaluator(a, levels, both[:1], 4, 2, shard),
        sweep.make_evaluator(a, levels, both[0], 4, 2, shard),
        sweep.make_evaluator(make(model, 12, 4), levels, both, 4, 2, shard),
        sweep.make_evaluator(a, levels, both, 4, 2, shard,
                             legacy_episode_end=True)):
      self.assertIsNot(changed, fn)
    # DD: which form of its sampling operations a trace gets is part of
    # what the program computes.
    dd_model = testing.shrink_model(dd_config.get_config('masked').model)
    dd = registry.make_policy('dd')(dd_model, 10, 4)
    with sampling_ops.use('plain'):
      plain = sweep.make_evaluator(dd, levels, both, 4, 2, shard)
      self.assertIs(sweep.make_evaluator(dd, levels, both, 4, 2, shard),
                    plain)
    with sampling_ops.use('cpu'):
      self.assertIsNot(sweep.make_evaluator(dd, levels, both, 4, 2, shard),
                       plain)

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
