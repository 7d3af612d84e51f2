"""End-to-end test of the quickstart on a shrunken configuration.

Every stage runs for real (PPO, data, flow and DD training, both sweeps,
report) at toy sizes; the test checks every output is there and well formed,
that a re-run skips finished stages, and that an interrupted evaluation
resumes without redoing finished rows.
"""

import csv
import os
import tempfile
import time

from absl.testing import absltest

from configs import quickstart as quickstart_config
from rtc import quickstart
from rtc.common import cache
from rtc.common import results
from rtc.common import summary
from rtc.common import sweep


def _config(out):
  c = quickstart_config.get_config('test')
  c.output_dir = out
  return c


class QuickstartTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.out = os.path.join(tempfile.mkdtemp(), 'qs')
    cls.logs = []
    quickstart.Quickstart(_config(cls.out), log=cls.logs.append).run()

  def test_outputs_exist_and_are_well_formed(self):
    with open(os.path.join(self.out, 'results.csv'), newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
    self.assertEqual(tuple(reader.fieldnames),
                     sweep.COLUMNS + ('policy',))
    # 2 policies x 2 methods x 2 delays (s = max(1, d)) x 1 level.
    self.assertLen(rows, 8)
    self.assertEqual({(r['policy'], r['method'], r['delay'],
                       r['execute_horizon']) for r in rows},
                     {(p, m, d, s) for p in ('flow', 'dd')
                      for m in ('naive', 'realtime')
                      for d, s in (('0', '1'), ('2', '2'))})
    for r in rows:
      self.assertTrue(0.0 <= float(r['returned_episode_solved']) <= 1.0)
    # The combined file reads like any results.csv.
    self.assertLen(results.read_results(os.path.join(self.out,
                                                     'results.csv')), 8)
    with open(os.path.join(self.out, 'solve_rate_vs_delay.png'), 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    with open(os.path.join(self.out, 'report.md')) as f:
      report = f.read()
    for text in ('| method | d=0 | d=2 |', '### flow',
                 '### discrete diffusion', '| expert |', '| dd_eval |',
                 '| total |',
                 '4 evaluation episodes per point', 'solve_rate_vs_delay.png'):
      self.assertIn(text, report)
    # TensorBoard logs for every stage.
    for tb in ('logs-expert/quickstart/tb', 'logs-flow/quickstart/tb',
               'logs-dd/quickstart/tb', 'tb/data', 'tb/flow_eval',
               'tb/dd_eval'):
      scalars = summary.read_scalars(os.path.join(self.out, tb))
      self.assertNotEmpty(scalars, tb)
    for stage in quickstart.STAGES:
      self.assertIsNotNone(quickstart.Quickstart(_config(self.out)).finished(
          stage), stage)
    self.assertTrue(any('left (estimate)' in l for l in self.logs))

  def test_rerun_skips_finished_stages(self):
    before = os.path.getmtime(os.path.join(self.out, 'eval_dd',
                                           'results.csv'))
    logs = []
    quickstart.Quickstart(_config(self.out), log=logs.append).run()
    skipped = [l for l in logs if 'skipping' in l]
    self.assertLen(skipped, len(quickstart.STAGES))
    self.assertEqual(before, os.path.getmtime(
        os.path.join(self.out, 'eval_dd', 'results.csv')))

  def test_interrupted_eval_resumes(self):
    out = self.out
    path = os.path.join(out, 'eval_dd', 'results.csv')
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    # As if dd_eval had been stopped after three of its four points.
    with open(path, 'w', newline='') as f:
      w = csv.DictWriter(f, fieldnames=sweep.COLUMNS)
      w.writeheader()
      w.writerows(rows[:3])
    for stage in ('dd_eval', 'report'):
      os.remove(os.path.join(out, 'stages', f'{stage}.json'))
    logs = []
    quickstart.Quickstart(_config(out), log=logs.append).run()
    self.assertLen([l for l in logs if 'skipping' in l], 5)
    self.assertTrue(any('resuming: 3 of 4' in l for l in logs), logs)
    with open(path, newline='') as f:
      again = list(csv.DictReader(f))
    self.assertEqual(again[:3], rows[:3])
    self.assertLen(again, 4)


class _Scripted(quickstart.Quickstart):
  """A quickstart whose stages only record their start and end."""

  def __init__(self, config, events, fail=None, hold=None):
    super().__init__(config, log=lambda _: None)
    self.events, self.fail, self.hold = events, fail, hold
    for stage in quickstart.STAGES:
      setattr(self, f'_{stage}', lambda s=stage: self._fake(s))

  def _fake(self, stage):
    self.events.append(('start', stage))
    if stage == self.hold:  # Waits (up to 10 s) for the other branch.
      deadline = time.time() + 10
      while ('start', 'dd_train') not in self.events and (
          time.time() < deadline):
        time.sleep(0.01)
    if stage == self.fail:
      raise RuntimeError(f'{stage} broke')
    self.events.append(('end', stage))
    return {}


class PlanTest(absltest.TestCase):
  """The stage plan, with stages that do no work."""

  def _config(self, parallel):
    c = _config(os.path.join(tempfile.mkdtemp(), 'qs'))
    c.parallel = parallel
    return c

  def test_branches_run_side_by_side_in_order(self):
    events = []
    _Scripted(self._config(True), events, hold='flow_train').run()
    order = [s for e, s in events if e == 'start']
    self.assertEqual(order[:2], ['expert', 'data'])
    self.assertEqual(order[-1], 'report')
    # dd_train started while flow_train was still running.
    self.assertLess(events.index(('start', 'dd_train')),
                    events.index(('end', 'flow_train')))
    for a, b in (('flow_train', 'flow_eval'), ('dd_train', 'dd_eval'),
                 ('data', 'flow_train'), ('data', 'dd_train'),
                 ('flow_eval', 'report'), ('dd_eval', 'report')):
      self.assertLess(events.index(('end', a)), events.index(('start', b)))

  def test_sequential_when_not_parallel(self):
    events = []
    _Scripted(self._config(False), events).run()
    self.assertEqual([s for e, s in events if e == 'start'],
                     ['expert', 'data', 'flow_train', 'flow_eval',
                      'dd_train', 'dd_eval', 'report'])

  def test_a_failing_branch_stops_the_run_after_the_other_ends(self):
    events = []
    c = self._config(True)
    with self.assertRaisesRegex(RuntimeError, 'flow_train broke'):
      _Scripted(c, events, fail='flow_train').run()
    self.assertIn(('end', 'dd_eval'), events)  # The other branch finished.
    self.assertNotIn(('start', 'flow_eval'), events)
    self.assertNotIn(('start', 'report'), events)
    # A re-run does only what is left.
    again = []
    _Scripted(c, again).run()
    self.assertEqual([s for e, s in again if e == 'start'],
                     ['flow_train', 'flow_eval', 'report'])

  def test_wall_seconds(self):
    secs = {'expert': 1, 'data': 2, 'flow_train': 3, 'flow_eval': 4,
            'dd_train': 5, 'dd_eval': 6, 'report': 7}
    self.assertEqual(quickstart.wall_seconds(secs.get), 1 + 2 + 11 + 7)
    self.assertEqual(quickstart.wall_seconds(secs.get, parallel=False),
                     28)


if __name__ == '__main__':
  absltest.main()
