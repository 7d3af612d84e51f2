"""The quickstart's plan over rtc.pipeline with stages that do no work:
order, branches side by side, failures, time left, replicates (resume,
adding replicates), changed settings and another suite's replicates."""

import csv
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from absl.testing import absltest

from configs import quickstart as quickstart_config
from rtc.common.base import paths
from rtc.common.bc import results
from rtc.common.bc import sweep
from rtc import pipeline
from rtc import quickstart

ONE = ['expert', 'data', 'flow_train', 'flow_eval', 'dd_train', 'dd_eval']


class Script:
  """Stage work that records its start and end (and may fail or wait)."""

  def __init__(self, fail=None, hold=None):
    self.events, self.fail, self.hold = [], fail, hold
    self.lock = threading.Lock()

  def wrap(self, stage):
    return dataclasses.replace(stage, work=lambda: self._fake(stage.id))

  def _fake(self, stage):
    with self.lock:
      self.events.append(('start', stage))
    if stage == self.hold:  # Waits (up to 10 s) for the other branch.
      deadline = time.time() + 10
      while ('start', 'dd_train') not in self.events and (
          time.time() < deadline):
        time.sleep(0.01)
    if stage == self.fail:
      raise RuntimeError(f'{stage} broke')
    with self.lock:
      self.events.append(('end', stage))
    return {}

  def started(self):
    return [s for e, s in self.events if e == 'start']


def _config(out=None, parallel=True, replicates=1):
  c = quickstart_config.get_config('test')
  c.output_dir = out or os.path.join(tempfile.mkdtemp(), 'qs')
  c.parallel = parallel
  c.replicates = replicates
  return c


def _tree(root):
  """{path: mtime} of every file under root."""
  return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
          for d, _, files in os.walk(root) for f in files}


class PlanTest(absltest.TestCase):

  def test_branches_run_side_by_side_in_order(self):
    script = Script(hold='flow_train')
    quickstart.run(_config(), log=lambda _: None, wrap=script.wrap)
    events, order = script.events, script.started()
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
    script = Script()
    quickstart.run(_config(parallel=False), log=lambda _: None,
                   wrap=script.wrap)
    self.assertEqual(script.started(), ONE + ['report'])

  def test_a_failing_branch_stops_the_run_after_the_other_ends(self):
    c = _config()
    script = Script(fail='flow_train')
    with self.assertRaisesRegex(RuntimeError, 'flow_train broke'):
      quickstart.run(c, log=lambda _: None, wrap=script.wrap)
    self.assertIn(('end', 'dd_eval'), script.events)  # The other finished.
    self.assertNotIn(('start', 'flow_eval'), script.events)
    self.assertNotIn(('start', 'report'), script.events)
    # A re-run does only what is left.
    again = Script()
    quickstart.run(c, log=lambda _: None, wrap=again.wrap)
    self.assertEqual(again.started(), ['flow_train', 'flow_eval', 'report'])

  def test_wall_seconds(self):
    secs = {'expert': 1, 'data': 2, 'flow_train': 3, 'flow_eval': 4,
            'dd_train': 5, 'dd_eval': 6, 'report': 7}
    plan = quickstart.make_pipeline(_config()).plan
    self.assertEqual(pipeline.wall_seconds(plan, lambda s: secs[s.id]),
                     1 + 2 + 11 + 7)
    self.assertEqual(pipeline.wall_seconds(plan, lambda s: secs[s.id],
                                           parallel=False), 28)


class ReplicateTest(absltest.TestCase):

  def test_ids_seeds_and_estimates_cover_every_replicate(self):
    c = _config(replicates=2)
    pipe = quickstart.make_pipeline(c)
    ids = [s.id for s in pipe.stages]
    self.assertEqual(ids, ONE + [f'replicate_1/{s}' for s in ONE] +
                     ['report'])
    by_id = {s.id: s for s in pipe.stages}
    # Replicate 1: every seed is the stage option's + 1000 (base seed 0).
    self.assertEqual(by_id['expert'].settings['seed'], c.expert.seed)
    self.assertEqual(by_id['replicate_1/expert'].settings['seed'],
                     c.expert.seed + 1000)
    self.assertEqual(by_id['replicate_1/data'].settings['seed'],
                     c.data.seed + 1000)
    self.assertEqual(by_id['replicate_1/dd_train'].settings['seed'],
                     c.dd.seed + 1000)
    self.assertEqual(by_id['replicate_1/flow_eval'].settings['seed'],
                     c.eval.seed + 1000)
    self.assertEqual(quickstart.replicate_seeds(c, 1)['policy'],
                     {'flow': c.flow.seed + 1000, 'dd': c.dd.seed + 1000})
    c.seed = 1  # Base seed 1's replicate 0 is base seed 0's replicate 1.
    self.assertEqual(quickstart.replicate_seeds(c, 0),
                     quickstart.replicate_seeds(_config(), 1))
    # The first estimate: both replicates' stages, each replicate's
    # branches side by side.
    secs = quickstart.expected_seconds(c, ('flow', 'dd'))
    one = (secs['expert'] + secs['data'] +
           max(secs['flow_train'] + secs['flow_eval'],
               secs['dd_train'] + secs['dd_eval']))
    self.assertAlmostEqual(pipe.seconds_left(),
                           2 * one + quickstart.EXPECTED_SECONDS['report'])

  def test_training_time_preset_plans_its_policies(self):
    c = quickstart_config.get_config('test,training_time')
    c.output_dir = os.path.join(tempfile.mkdtemp(), 'qs')
    self.assertEqual(quickstart.policy_names(c),
                     ('flow', 'dd', 'flow_training_time', 'dd_training_time'))
    for name, base in (('flow_training_time', 'flow'),
                       ('dd_training_time', 'dd')):
      self.assertEqual(c[name].model.simulated_delay, 5)
      self.assertIsNone(c[base].model.simulated_delay)
      self.assertEqual(c[name].model.to_dict(),
                       dict(c[base].model.to_dict(), simulated_delay=5))
      self.assertEqual(quickstart.eval_config(c, name, 0).methods,
                       'training_time')
    self.assertEqual(quickstart.eval_config(c, 'flow', 0).methods,
                     'naive,realtime')
    ids = [s.id for s in quickstart.make_pipeline(c).stages]
    self.assertIn('dd_training_time_train', ids)
    self.assertEqual(quickstart_config.training_time_bases(
        ('flow', 'flow_training_time', 'dd_training_time')),
                     {'flow_training_time': 'flow'})

  def test_time_left_learns_the_runs_pace(self):
    # Stages that take 3x their estimate: after the first, the rest count
    # 3x too. Estimates: a 10, then branches (b 20, c 40 | d 30), then e 5.
    took = {'a': 30, 'b': 60, 'c': 120, 'd': 90, 'e': 15}
    seen = []
    def stage(name, secs):
      return pipeline.Stage(name, lambda: {}, secs, {'s': name})
    plan = [stage('a', 10), ((stage('b', 20), stage('c', 40)),
                             (stage('d', 30),)), stage('e', 5)]
    pipe = pipeline.Pipeline('t', tempfile.mkdtemp(), plan,
                             log=lambda _: None)
    self.assertEqual(pipe.seconds_left(), 10 + 60 + 5)
    self.assertEqual(pipe.calibration(), 1.0)
    clock = [0.0]
    real_time = pipeline.time.time
    def fake_time():
      return clock[0]
    def work_of(name):
      def work():
        seen.append((name, pipe.seconds_left()))
        clock[0] += took[name]
        return {}
      return work
    pipe = pipeline.Pipeline(
        't', tempfile.mkdtemp(),
        [dataclasses.replace(plan[0], work=work_of('a')),
         tuple(tuple(dataclasses.replace(x, work=work_of(x.id)) for x in b)
               for b in plan[1]),
         dataclasses.replace(plan[2], work=work_of('e'))],
        parallel=False, log=lambda _: None)
    pipeline.time.time = fake_time
    try:
      pipe.run()
    finally:
      pipeline.time.time = real_time
    left = dict(seen)  # One after the other: the branches add up.
    self.assertEqual(left['a'], 10 + 90 + 5)  # Nothing finished yet.
    self.assertEqual(left['b'], 3 * (90 + 5))  # a took 3x its estimate.
    self.assertEqual(left['e'], 3 * 5)
    self.assertAlmostEqual(pipe.calibration(), 3.0)

  def test_a_replicate_resumes_and_a_rerun_adds_only_new_ones(self):
    c = _config(replicates=2, parallel=False)
    broken = Script(fail='replicate_1/flow_eval')
    with self.assertRaisesRegex(RuntimeError, 'broke'):
      quickstart.run(c, log=lambda _: None, wrap=broken.wrap)
    # One stage after another: the run stops at the failure.
    self.assertEqual(broken.started(), ONE + [
        'replicate_1/expert', 'replicate_1/data', 'replicate_1/flow_train',
        'replicate_1/flow_eval'])
    resumed = Script()
    quickstart.run(c, log=lambda _: None, wrap=resumed.wrap)
    self.assertEqual(resumed.started(), [
        'replicate_1/flow_eval', 'replicate_1/dd_train',
        'replicate_1/dd_eval', 'report'])
    out = paths.resolve(c.output_dir)
    for pre in ('', 'replicate_1/'):
      self.assertTrue(os.path.exists(os.path.join(
          out, pre, 'stages', 'flow_eval.json')))
    c.replicates = 3
    more = Script()
    logs = []
    quickstart.run(c, log=logs.append, wrap=more.wrap)
    self.assertEqual(more.started(),
                     [f'replicate_2/{s}' for s in ONE] + ['report'])
    self.assertLen([l for l in logs if 'skipping' in l], 12)
    self.assertLen([l for l in logs if 'report: made from' in l], 1)


class Outputs(Script):
  """Stages that write what the report reads (run directories' config.json,
  evaluations' results.csv and eval_settings.json); the report is real."""

  def __init__(self, out):
    super().__init__()
    self.out = out

  def wrap(self, stage):
    if stage.id == 'report':
      return stage
    return dataclasses.replace(stage, work=lambda: self._write(stage))

  def _write(self, stage):
    self._fake(stage.id)
    pre, name = os.path.split(stage.id)
    folder = os.path.join(self.out, pre)
    policy, _, step = name.rpartition('_')
    if name in ('expert', 'data'):
      run = os.path.join(folder, 'logs-expert', 'quickstart')
      if name == 'data':
        return {'files': []}
      _write_json(os.path.join(run, 'config.json'), stage.settings)
      return {'run_dir': run}
    run = os.path.join(folder, f'logs-{policy}', 'quickstart')
    if step == 'train':
      _write_json(os.path.join(run, 'config.json'), stage.settings)
      return {'run_dir': run}
    path = os.path.join(folder, f'eval_{policy}', 'results.csv')
    _write_json(os.path.join(os.path.dirname(path), 'eval_settings.json'),
                {'seed': stage.settings['seed'], 'num_evals': 4})
    with open(path, 'w', newline='') as f:
      w = csv.DictWriter(f, fieldnames=sweep.COLUMNS)
      w.writeheader()
      for d in (0, 2):
        w.writerow({'level': 'worlds/m/h0_unicycle.json', 'delay': d,
                    'execute_horizon': max(1, d), 'method': 'naive',
                    'returned_episode_solved': 0.5,
                    'returned_episode_returns': 0,
                    'returned_episode_lengths': 9})
    return {'results': path}


def _write_json(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(value, f)


class ReportTest(absltest.TestCase):

  def test_the_report_pools_replicates_with_recorded_seeds(self):
    c = _config(replicates=2)
    c.eval.seed = 5
    quickstart.run(c, log=lambda _: None, wrap=Outputs(c.output_dir).wrap)
    rows = results.read_results(os.path.join(c.output_dir, 'results.csv'))
    self.assertLen(rows, 2 * 2 * 2)  # replicates x policies x delays.
    got = {(r['replicate'], r['policy']): (r['expert_seed'], r['eval_seed'],
                                          r['policy_seed'], r['run_dir'])
           for r in rows}
    self.assertEqual(got[(0, 'flow')], (0, 5, 0, 'logs-flow/quickstart'))
    self.assertEqual(got[(1, 'dd')], (1000, 1005, 1000,
                                      'replicate_1/logs-dd/quickstart'))
    with open(os.path.join(c.output_dir, 'report.md')) as f:
      text = f.read()
    self.assertIn('2 replicate(s)', text)
    self.assertIn('| replicate_1/dd_eval |', text)
    self.assertIn('* dd training: seed: 1000 (replicate 0: 0)', text)
    # Equal rows: a difference of 0 with an interval of zero width.
    self.assertIn('| naive: dd - flow | 2 | +0.000 [+0.000, +0.000] | no '
                  'detectable difference |', text)


class SettingsTest(absltest.TestCase):

  def test_changed_settings_are_refused_before_anything_runs(self):
    c = _config(replicates=2)
    quickstart.run(c, log=lambda _: None, wrap=Script().wrap)
    before = _tree(c.output_dir)
    c.dd.num_epochs = 2  # Was 1 (the test preset).
    script = Script()
    with self.assertRaisesRegex(
        ValueError, r'^\S+/stages/dd_train\.json: stage dd_train ran with '
        r'other settings \(dd\.num_epochs: 1 there, 2 now\); pass a new '
        r'--output_dir'):
      quickstart.run(c, log=lambda _: None, wrap=script.wrap)
    self.assertEqual(script.events, [])
    self.assertEqual(_tree(c.output_dir), before)

  def test_an_option_added_since_reuses_the_stage_while_off(self):
    # A marker from before model.early_stop existed: the option at its off
    # value (False, None) is the same run; switched on, it differs.
    c = _config()
    quickstart.run(c, log=lambda _: None, wrap=Script().wrap)
    marker = os.path.join(c.output_dir, 'stages', 'dd_train.json')
    with open(marker) as f:
      done = json.load(f)
    self.assertEqual(done['settings']['model']['early_stop'], False)
    del done['settings']['model']['early_stop']
    with open(marker, 'w') as f:
      json.dump(done, f)
    script = Script()
    quickstart.run(c, log=lambda _: None, wrap=script.wrap)
    self.assertEqual(script.started(), [])  # Nothing to redo.
    c.dd.model.early_stop = True
    with self.assertRaisesRegex(
        ValueError, r'stage dd_train ran with other settings \(dd\.model\.'
        r'early_stop: None there, True now\)'):
      quickstart.run(c, log=lambda _: None, wrap=Script().wrap)
    self.assertIsNone(pipeline.first_difference({'a': 1}, {'a': 1,
                                                           'b': None}))
    self.assertEqual(pipeline.first_difference({'a': 1, 'b': False},
                                               {'a': 1}),
                     'b: False there, None now')

  def test_changed_report_inputs_redo_the_report(self):
    c = _config()
    quickstart.run(c, log=lambda _: None, wrap=Script().wrap)
    c.policies = 'flow'
    script = Script()
    quickstart.run(c, log=lambda _: None, wrap=script.wrap)
    self.assertEqual(script.started(), ['report'])
    c.report_latency_csv = '/a/latency.csv'  # The report's own input.
    script = Script()
    quickstart.run(c, log=lambda _: None, wrap=script.wrap)
    self.assertEqual(script.started(), ['report'])

  def test_another_suites_replicate_is_refused(self):
    mine, other = _config(replicates=1), _config(replicates=2)
    other.expert.levels = 's/h0_weak_thrust'
    quickstart.run(mine, log=lambda _: None, wrap=Script().wrap)
    quickstart.run(other, log=lambda _: None, wrap=Script().wrap)
    os.rename(os.path.join(other.output_dir, 'replicate_1'),
              os.path.join(mine.output_dir, 'replicate_1'))
    before = _tree(mine.output_dir)
    mine.replicates = 2
    with self.assertRaisesRegex(
        ValueError, r'replicate_1/replicate\.json: replicate 1 there is of '
        r"another suite \(levels: 's/h0_weak_thrust' there, "
        r"'m/h0_unicycle' now\)"):
      quickstart.run(mine, log=lambda _: None, wrap=Script().wrap)
    self.assertEqual(_tree(mine.output_dir), before)


class BadInputTest(absltest.TestCase):
  """The binary: one `error:` line, exit status 2, nothing written."""

  def _run(self, *flags):
    proc = subprocess.run(
        [sys.executable, '-m', 'rtc.benchmark',
         '--config=configs/quickstart.py:suite,test', *flags],
        capture_output=True, text=True, cwd=paths.repo_root(), check=False)
    errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertLen(errors, 1, proc.stderr)
    return errors[0]

  def test_bad_replicates_changed_settings_and_another_suite(self):
    root = tempfile.mkdtemp()
    line = self._run('--config.replicates=0', f'--output_dir={root}/new')
    self.assertIn('--config.replicates must be >= 1', line)
    self.assertFalse(os.path.exists(f'{root}/new'))
    c = quickstart_config.get_config('suite,test')
    c.output_dir = f'{root}/done'
    quickstart.run(c, log=lambda _: None, wrap=Script().wrap)
    before = _tree(c.output_dir)
    line = self._run(f'--output_dir={root}/done', '--config.eval.seed=7')
    self.assertIn('stage flow_eval ran with other settings (flow_eval.seed: '
                  '0 there, 7 now)', line)
    self.assertEqual(_tree(c.output_dir), before)
    # A replicate folder of another suite.
    other = quickstart_config.get_config('suite,test')
    other.output_dir, other.replicates = f'{root}/other', 2
    other.expert.levels = 's/h0_weak_thrust'
    quickstart.run(other, log=lambda _: None, wrap=Script().wrap)
    os.rename(f'{root}/other/replicate_1', f'{root}/done/replicate_1')
    before = _tree(c.output_dir)
    line = self._run(f'--output_dir={root}/done', '--config.replicates=2')
    self.assertIn('replicate_1/replicate.json: replicate 1 there is of '
                  'another suite (levels: ', line)
    self.assertEqual(_tree(c.output_dir), before)


if __name__ == '__main__':
  absltest.main()
