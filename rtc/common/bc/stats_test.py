"""Tests for rtc.common.bc.stats and rtc.common.bc.interval_plot on hand-computed
values (rtc.common.testlib.stats_testing's planted rows, R = 2)."""

import math
import os

from absl.testing import absltest

from rtc.common.bc import interval_plot
from rtc.common.bc import results
from rtc.common.bc import stats
from rtc.common.bc import sweep
from rtc.common.testlib import stats_testing

# Student t's 97.5% point with 1 degree of freedom: tan(0.475 pi).
T1 = math.tan(0.475 * math.pi)  # 12.7062...


class IntervalTest(absltest.TestCase):

  def test_t_interval_by_hand(self):
    iv = stats.t_interval([0.28, 0.32])
    # sd 0.02 * sqrt(2), standard error 0.02.
    self.assertAlmostEqual(iv.mean, 0.30, places=12)
    self.assertAlmostEqual(iv.lo, 0.30 - T1 * 0.02, places=9)
    self.assertAlmostEqual(iv.hi, 0.30 + T1 * 0.02, places=9)
    self.assertEqual(iv.verdict, stats.BETTER)
    # Three replicates: t(0.975, 2) = 4.302653 (tables).
    iv = stats.t_interval([1.0, 2.0, 3.0])
    self.assertAlmostEqual(iv.hi - iv.mean, 4.302653 / math.sqrt(3),
                           places=5)

  def test_verdicts(self):
    self.assertEqual(stats.t_interval([-0.3, -0.32]).verdict, stats.WORSE)
    self.assertEqual(stats.t_interval([0.05, -0.05]).verdict, stats.NONE)
    one = stats.t_interval([0.4])
    self.assertTrue(math.isnan(one.lo))
    self.assertEqual(one.verdict, stats.NO_INTERVAL)
    with self.assertRaisesRegex(ValueError, 'no values'):
      stats.t_interval([])


class PlantedTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.rows = stats_testing.rows()

  def test_estimates(self):
    est = stats.estimates(self.rows)
    self.assertEqual(list(est), ['flow', 'dd'])
    naive = est['flow']['naive'][2]
    self.assertAlmostEqual(naive.mean, 0.55, places=12)
    # Replicate means 0.5, 0.6: standard error 0.05.
    self.assertAlmostEqual(naive.hi - naive.mean, T1 * 0.05, places=9)
    self.assertEqual(naive.replicates, 2)
    # Episodes: sqrt((0.24 + 0.24 + 0.25 + 0.21) / 100) / 4.
    self.assertAlmostEqual(naive.episode_se, math.sqrt(0.0094) / 4,
                           places=12)

  def test_planted_differences(self):
    found = {(c.policy, c.method, c.reference): c
             for c in stats.comparisons(self.rows)}
    self.assertLen(found, 4)
    gain = found[('flow', 'realtime', 'naive')]
    self.assertTrue(gain.of_methods)
    self.assertEqual(gain.delay, 2)
    self.assertAlmostEqual(gain.difference.mean, 0.30, places=12)
    self.assertAlmostEqual(gain.difference.lo, 0.30 - T1 * 0.02, places=9)
    self.assertEqual(gain.difference.verdict, stats.BETTER)
    self.assertEqual(gain.label, 'flow: realtime - naive')
    null = found[('dd', 'naive', 'flow')]
    self.assertFalse(null.of_methods)
    self.assertAlmostEqual(null.difference.mean, 0.0, places=12)
    self.assertAlmostEqual(null.difference.hi, T1 * 0.05, places=9)
    self.assertEqual(null.difference.verdict, stats.NONE)
    self.assertEqual(null.label, 'naive: dd - flow')
    # dd realtime - naive: -0.30, -0.23 (standard error 0.035).
    dd = found[('dd', 'realtime', 'naive')].difference
    self.assertAlmostEqual(dd.mean, -0.265, places=12)
    self.assertAlmostEqual(dd.hi, -0.265 + T1 * 0.035, places=9)
    self.assertEqual(dd.verdict, stats.NONE)
    # dd - flow with realtime: -0.53, -0.60.
    worse = found[('dd', 'realtime', 'flow')].difference
    self.assertAlmostEqual(worse.hi, -0.565 + T1 * 0.035, places=9)
    self.assertEqual(worse.verdict, stats.WORSE)

  def test_gain_against_the_reference_policys_gain(self):
    # (dd realtime - dd naive) - (flow realtime - flow naive), per
    # replicate: (-0.30 - 0.28, -0.23 - 0.32) = (-0.58, -0.55); standard
    # error 0.015.
    found = stats.gain_comparisons(self.rows)
    self.assertLen(found, 1)
    gain = found[0]
    self.assertEqual((gain.policy, gain.method, gain.reference, gain.delay),
                     ('dd', 'realtime', 'flow', 2))
    self.assertEqual(gain.label, 'realtime - naive: dd - flow')
    self.assertAlmostEqual(gain.difference.mean, -0.565, places=12)
    self.assertAlmostEqual(gain.difference.hi, -0.565 + T1 * 0.015, places=9)
    self.assertEqual(gain.difference.verdict, stats.WORSE)
    # It is the difference of the two paired differences it combines.
    by = {c.label: c.difference.mean for c in stats.comparisons(self.rows)}
    self.assertAlmostEqual(
        gain.difference.mean,
        by['dd: realtime - naive'] - by['flow: realtime - naive'], places=12)
    # Against dd as the reference: flow's gain minus dd's, the opposite.
    flipped = stats.gain_comparisons(self.rows, reference_policy='dd')
    self.assertEqual([c.label for c in flipped],
                     ['realtime - naive: flow - dd'])
    self.assertAlmostEqual(flipped[0].difference.mean, 0.565, places=12)
    # Only replicates that hold all four cells count; a policy without
    # naive has no gain.
    planted = {k: v for k, v in stats_testing.PLANTED.items()
               if k != ('dd', 'naive', 1)}
    one = stats.gain_comparisons(stats_testing.rows(planted))
    self.assertEqual(one[0].difference.replicates, 1)
    self.assertAlmostEqual(one[0].difference.mean, -0.58, places=12)
    planted = {k: v for k, v in stats_testing.PLANTED.items()
               if k[:2] != ('dd', 'naive')}
    self.assertEqual(stats.gain_comparisons(stats_testing.rows(planted)), [])

  def test_training_time_policy_against_its_base(self):
    # flow_tt's training_time: 0.90 / 0.80 (level means) in replicates 0 / 1;
    # minus flow naive (0.50, 0.60): 0.40, 0.20; minus flow realtime
    # (0.78, 0.92): 0.12, -0.12.
    planted = dict(stats_testing.PLANTED)
    planted[('flow_tt', 'training_time', 0)] = (0.90, 0.90)
    planted[('flow_tt', 'training_time', 1)] = (0.80, 0.80)
    rows = stats_testing.rows(planted)
    found = {c.label: c for c in stats.comparisons(
        rows, bases={'flow_tt': 'flow'})}
    naive = found['flow_tt training_time - flow naive']
    self.assertAlmostEqual(naive.difference.mean, 0.30, places=12)
    self.assertAlmostEqual(naive.difference.hi, 0.30 + T1 * 0.10, places=9)
    self.assertEqual(naive.delay, 2)
    realtime = found['flow_tt training_time - flow realtime'].difference
    self.assertAlmostEqual(realtime.mean, 0.0, places=12)
    self.assertEqual(realtime.verdict, stats.NONE)
    # Without bases the training-time policy has nothing to pair with.
    self.assertFalse([c for c in stats.comparisons(rows)
                      if c.policy == 'flow_tt'])

  def test_pairs_within_replicate(self):
    # Shifting replicate 1's every cell by -0.1 changes no paired
    # difference; flow naive's replicate means become 0.5 and 0.5, so its
    # interval has zero width.
    shifted = [dict(r, returned_episode_solved=r['returned_episode_solved']
                    - 0.1 * r['replicate']) for r in self.rows]
    before = {c.label: c.difference for c in stats.comparisons(self.rows)}
    after = {c.label: c.difference for c in stats.comparisons(shifted)}
    for label, iv in before.items():
      self.assertAlmostEqual(after[label].mean, iv.mean, places=12)
    naive = stats.estimates(shifted)['flow']['naive'][2]
    self.assertAlmostEqual(naive.hi - naive.mean, 0, places=9)

  def test_level_drops_by_hand(self):
    # Flow naive on two levels, 3 replicates, d = 0 and 4 (s = max(1, d)):
    # level a drops 0.9, 0.5, 0.7 (mean 0.7, sd 0.2); level b 0.1, 0.0,
    # -0.1 (mean 0, sd 0.1). A realtime row and a dd row change nothing.
    rates = {('a', 0): (1.0, 0.9, 1.0), ('a', 4): (0.1, 0.4, 0.3),
             ('b', 0): (0.8, 0.7, 0.6), ('b', 4): (0.7, 0.7, 0.7)}
    rows = []
    for (lv, d), by_rep in rates.items():
      for rep, p in enumerate(by_rep):
        for policy, method, value in (('flow', 'naive', p),
                                      ('flow', 'realtime', 1.0),
                                      ('dd', 'naive', 0.0)):
          rows.append({'policy': policy, 'method': method, 'level': lv,
                       'delay': d, 'execute_horizon': max(1, d),
                       'replicate': rep, 'returned_episode_solved': value})
    drops = stats.level_drops(rows)
    self.assertEqual(sorted(drops), ['a', 'b'])
    t2 = 4.302653  # t(0.975, 2).
    for lv, mean, sd in (('a', 0.7, 0.2), ('b', 0.0, 0.1)):
      at0, at4, drop = drops[lv]
      self.assertAlmostEqual(drop.mean, mean, places=9)
      self.assertAlmostEqual(drop.hi - drop.mean, t2 * sd / math.sqrt(3),
                             places=5)
      self.assertEqual(drop.replicates, 3)
      self.assertAlmostEqual(at0.mean - at4.mean, mean, places=9)
    self.assertAlmostEqual(drops['a'][0].mean, 2.9 / 3, places=9)
    self.assertEqual(drops['a'][2].verdict, stats.BETTER)
    self.assertEqual(drops['b'][2].verdict, stats.NONE)
    # A replicate missing d = 4 on level b: its drop uses the other two.
    fewer = [r for r in rows if not (r['level'] == 'b' and r['delay'] == 4
                                     and r['replicate'] == 2)]
    self.assertEqual(stats.level_drops(fewer)['b'][2].replicates, 2)
    self.assertAlmostEqual(stats.level_drops(fewer)['b'][2].mean, 0.05,
                           places=9)
    self.assertEqual(stats.level_drops(rows, policy='dd')['a'][2].mean, 0.0)
    self.assertEqual(stats.level_drops(rows, high=3), {})

  def test_older_file_without_replicate_is_replicate_0(self):
    path = os.path.join(self.create_tempdir().full_path, 'results.csv')
    older = sweep.COLUMNS + ('policy',)
    stats_testing.write_csv(
        path, stats_testing.rows(
            {k: v for k, v in stats_testing.PLANTED.items() if k[2] == 0},
            replicate_column=False), columns=older)
    rows = results.read_results(path)
    self.assertEqual({r['replicate'] for r in rows}, {0})
    self.assertNotIn('num_evals', rows[0])
    est = stats.estimates(rows, num_evals=100)
    self.assertAlmostEqual(est['flow']['naive'][2].mean, 0.5, places=6)
    self.assertAlmostEqual(est['flow']['naive'][2].episode_se,
                           math.sqrt(0.48 / 100) / 2, places=9)
    self.assertEqual({c.difference.verdict for c in stats.comparisons(rows)},
                     {stats.NO_INTERVAL})

  def test_plots(self):
    out = self.create_tempdir().full_path
    paths = interval_plot.plot_all(
        self.rows, {'dd': 'discrete diffusion'},
        [os.path.join(out, 'm.png'), os.path.join(out, 'g.png')])
    for p in paths:
      with open(p, 'rb') as f:
        self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')


if __name__ == '__main__':
  absltest.main()
