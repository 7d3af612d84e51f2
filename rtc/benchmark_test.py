"""The level survey and the CPU benchmark, end to end on two tiny levels.

Both run every stage for real (PPO, data, training, sweeps) at toy sizes
(configs/quickstart.py:test): the survey's table, the benchmark's per-level
rows, means, figures and report, and that a re-run of either redoes
nothing. The benchmark is the quickstart's pipeline (rtc.quickstart.run
under another name and preset), so its run also carries the quickstart's
end-to-end checks: every output there and well formed, TensorBoard logs for
every stage, the report's Settings as the stages recorded them, and an
interrupted evaluation resuming without redoing finished points. (One
pipeline run serves both: a second, one-level run of the same code cost the
cold suite about 150 s.)
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import numpy as np

from configs import quickstart as quickstart_config
from rtc.bench import level_survey
from rtc import benchmark
from rtc.common.base import cache
from rtc.common.base import paths
from rtc.common.bc import results
from rtc.common.bc import summary
from rtc.common.bc import sweep
from rtc import quickstart

LEVELS = ('m/h0_unicycle', 'm/h4_thrust_the_needle')
# The benchmark mixes sizes as the suite does: the s/ level is padded.
SUITE_LEVELS = ('m/h0_unicycle', 's/h5_rotate_fall')
PNG = b'\x89PNG\r\n\x1a\n'


def _benchmark_config(out):
  c = quickstart_config.get_config('suite,test')
  c.output_dir = out
  c.expert.levels = ','.join(SUITE_LEVELS)
  c.expert.worlds_dir = ''  # kinetix-env's levels, not the suite's worlds/.
  c.policies = 'flow,dd'
  return c


def setUpModule():
  cache.enable_compilation_cache()


class LevelSurveyTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out = tempfile.mkdtemp()
    cls.logs = []
    # Threshold 0: every level goes on to data, training and evaluation.
    cls.rows = level_survey.survey({'m': LEVELS}, cls.out, threshold=0.0,
                                   min_drop=0.2, num_evals=4, preset='test',
                                   expert_updates=3, log=cls.logs.append)

  def test_table(self):
    with open(os.path.join(self.out, 'survey.csv'), newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
    self.assertEqual(tuple(reader.fieldnames), level_survey.COLUMNS)
    self.assertEqual([r['level'] for r in rows], list(LEVELS))
    for r in rows:
      self.assertBetween(float(r['expert_solve_rate']), 0.0, 1.0)
      self.assertGreater(float(r['expert_minutes']), 0.0)
      rates = [float(r[f'flow_{m}_d{d}']) for m, d in level_survey.POINTS]
      for v in rates:
        self.assertBetween(v, 0.0, 1.0)
      self.assertAlmostEqual(float(r['naive_drop']), rates[0] - rates[1],
                             places=3)
      self.assertEqual(int(r['qualifies']), int(rates[0] - rates[1] >= 0.2))
    # The flow rates are the evaluation's own rows.
    evals = results.read_results(os.path.join(self.out, 'm', 'eval_flow',
                                              'results.csv'))
    self.assertLen(evals, len(LEVELS) * len(level_survey.POINTS))
    by = {(r['level'], r['method'], r['delay']): r['returned_episode_solved']
          for r in evals}
    for r in rows:
      self.assertAlmostEqual(
          float(r['flow_realtime_d4']),
          by[('worlds/' + r['level'] + '.json', 'realtime', 4)], places=3)

  def test_rerun_redoes_nothing(self):
    logs = []
    rows = level_survey.survey({'m': LEVELS}, self.out, threshold=0.0,
                               min_drop=0.2, num_evals=4, preset='test',
                               expert_updates=3, log=logs.append)
    self.assertEqual(rows, self.rows)
    self.assertLen([l for l in logs if 'finished earlier' in l], 4)

  def test_expert_updates(self):
    # --expert_updates replaces the preset's PPO updates (test preset: 2).
    with open(os.path.join(self.out, 'm', 'logs-expert', 'survey',
                           'config.json')) as f:
      self.assertEqual(json.load(f)['train']['num_updates'], 3)
    self.assertEqual(max(level_survey.expert_curve(
        os.path.join(self.out, 'm', 'logs-expert', 'survey'),
        LEVELS[0] + '.json', 1)), 3)

  def test_bad_flags_are_one_error_line(self):
    for flag, says in (('--expert_updates=-1', '--expert_updates must be'),
                       ('--classes=x', 'unknown size class'),
                       ('--num_evals=0', '--num_evals must be'),
                       (f'--worlds_dir={self.out}/none',
                        f'--worlds_dir={self.out}/none is not a folder')):
      proc = subprocess.run(
          [sys.executable, '-m', 'rtc.bench.level_survey', flag,
           f'--output_dir={self.out}/bad'], capture_output=True, text=True,
          cwd=paths.repo_root(), check=False)
      self.assertEqual(proc.returncode, 2, flag)
      errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
      self.assertLen(errors, 1, proc.stderr)
      self.assertIn(says, errors[0])
      self.assertFalse(os.path.exists(f'{self.out}/bad'))

  def test_replicated_table_from_results(self):
    # The survey's own evaluation read back as a benchmark's results (one
    # replicate): the same rates and drops as survey.csv, no interval.
    out = os.path.join(self.out, 'replicated.csv')
    proc = subprocess.run(
        [sys.executable, '-m', 'rtc.bench.level_survey', '--from_results='
         + os.path.join(self.out, 'm', 'eval_flow', 'results.csv'),
         f'--csv={out}', '--min_drop=0.2'], capture_output=True, text=True,
        cwd=paths.repo_root(), check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    with open(out, newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
    self.assertEqual(tuple(reader.fieldnames),
                     level_survey.REPLICATED_COLUMNS)
    self.assertEqual([r['level'] for r in rows], list(LEVELS))
    for r, survey_row in zip(rows, self.rows):
      for k in ('flow_naive_d0', 'flow_naive_d4', 'naive_drop'):
        self.assertAlmostEqual(float(r[k]), float(survey_row[k]), places=3)
      self.assertEqual((r['replicates'], r['naive_drop_lo']), ('1', ''))
      self.assertEqual(int(r['qualifies']),
                       int(float(r['naive_drop']) >= 0.2))
    self.assertIn('| level | replicates |', proc.stdout)
    # Rows without naive at d = 4: one error line, nothing written.
    only_d0 = os.path.join(self.out, 'only_d0.csv')
    with open(os.path.join(self.out, 'm', 'eval_flow', 'results.csv')) as f:
      lines = f.read().splitlines()
    header = lines[0].split(',')
    d, m = header.index('delay'), header.index('method')
    with open(only_d0, 'w') as f:
      f.write('\n'.join([lines[0]] + [
          l for l in lines[1:] if l.split(',')[d] == '0'
          or l.split(',')[m] != 'naive']) + '\n')
    proc = subprocess.run(
        [sys.executable, '-m', 'rtc.bench.level_survey',
         f'--from_results={only_d0}', f'--csv={self.out}/none.csv'],
        capture_output=True, text=True, cwd=paths.repo_root(), check=False)
    self.assertEqual(proc.returncode, 2)
    errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
    self.assertLen(errors, 1, proc.stderr)
    self.assertIn('no flow naive rows at both d = 0 and d = 4', errors[0])
    self.assertFalse(os.path.exists(f'{self.out}/none.csv'))

  def test_threshold_filters_levels(self):
    # An unreachable threshold: no level qualifies for data (a rerun of the
    # finished expert stage decides it from the saved statistics).
    group = level_survey.SizeClass(
        _survey_config(os.path.join(self.out, 'm')), threshold=1.01)
    self.assertEqual(group.good_levels(), [])
    group = level_survey.SizeClass(
        _survey_config(os.path.join(self.out, 'm')), threshold=0.0)
    self.assertEqual(group.good_levels(), [l + '.json' for l in LEVELS])


def _survey_config(out):
  c = quickstart_config.get_config('test')
  c.output_dir = out
  c.expert.levels = ','.join(LEVELS)
  return c


class BenchmarkTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out = tempfile.mkdtemp()
    cls.logs = []
    benchmark.run(_benchmark_config(cls.out), log=cls.logs.append)

  def test_outputs_exist_and_are_well_formed(self):
    with open(os.path.join(self.out, 'results.csv'), newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
    self.assertEqual(tuple(reader.fieldnames), results.COMBINED_COLUMNS)
    # 2 policies x 2 methods x 2 delays (s = max(1, d)) x 2 levels.
    self.assertLen(rows, 16)
    self.assertEqual({(r['policy'], r['method'], r['delay'],
                       r['execute_horizon']) for r in rows},
                     {(p, m, d, s) for p in ('flow', 'dd')
                      for m in ('naive', 'realtime')
                      for d, s in (('0', '1'), ('2', '2'))})
    for r in rows:
      self.assertTrue(0.0 <= float(r['returned_episode_solved']) <= 1.0)
      # Provenance: replicate 0 runs with the stage options' seeds.
      self.assertEqual((r['replicate'], r['expert_seed'], r['eval_seed'],
                        r['num_evals']), ('0', '0', '0', '4'))
      self.assertEqual(r['run_dir'], f'logs-{r["policy"]}/benchmark')
    with open(os.path.join(self.out, 'report.md')) as f:
      report = f.read()
    for text in ('| method | d=0 | d=2 |', '### flow',
                 '### discrete diffusion', '| expert |', '| dd_eval |',
                 '| total |', 'mean_solve_rate_vs_delay.png'):
      self.assertIn(text, report)
    # TensorBoard logs for every stage.
    for tb in ('logs-expert/benchmark/tb', 'logs-flow/benchmark/tb',
               'logs-dd/benchmark/tb', 'tb/data', 'tb/flow_eval',
               'tb/dd_eval'):
      scalars = summary.read_scalars(os.path.join(self.out, tb))
      self.assertNotEmpty(scalars, tb)
    pipe = quickstart.make_pipeline(_benchmark_config(self.out),
                                    benchmark.NAME)
    for stage in pipe.stages:
      self.assertIsNotNone(pipe.finished(stage.id), stage.id)
    self.assertTrue(any('left (estimate)' in l for l in self.logs))
    # The Settings are what the stages recorded.
    settings = report[report.index('## Settings'):]
    for who, path in (('flow training', 'logs-flow/benchmark/config.json'),
                      ('dd evaluation', 'eval_dd/eval_settings.json')):
      block = settings[settings.index(f'#### {who} (`{path}`)'):]
      block = block[block.index('```json\n') + 8:]
      with open(os.path.join(self.out, path)) as f:
        self.assertEqual(json.loads(block[:block.index('```')]),
                         json.load(f))

  def test_interrupted_eval_resumes(self):
    path = os.path.join(self.out, 'eval_dd', 'results.csv')
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    # As if dd_eval had been stopped after three of its four points (a
    # point's rows are its two levels').
    with open(path, 'w', newline='') as f:
      w = csv.DictWriter(f, fieldnames=sweep.COLUMNS)
      w.writeheader()
      w.writerows(rows[:6])
    for stage in ('dd_eval', 'report'):
      os.remove(os.path.join(self.out, 'stages', f'{stage}.json'))
    logs = []
    benchmark.run(_benchmark_config(self.out), log=logs.append)
    self.assertLen([l for l in logs if 'finished earlier' in l], 5)
    self.assertTrue(any('resuming: 3 of 4' in l for l in logs), logs)
    with open(path, newline='') as f:
      again = list(csv.DictReader(f))
    self.assertEqual(again[:6], rows[:6])
    self.assertLen(again, 8)

  def test_per_level_rows_and_means(self):
    rows = results.read_results(os.path.join(self.out, 'results.csv'))
    # 2 policies x 2 levels x 2 methods x 2 delays.
    self.assertLen(rows, 16)
    self.assertEqual({r['level'] for r in rows},
                     {f'worlds/{l}.json' for l in SUITE_LEVELS})
    with open(os.path.join(self.out, 'report.md')) as f:
      report = f.read()
    self.assertIn('mean over 2 levels', report)
    self.assertIn('4 evaluation episodes per point and level', report)
    # The flow table's naive d=2 cell is the mean of the two levels' rows,
    # with the standard error of that mean.
    flow = report[report.index('### flow'):report.index('### discrete')]
    cell = re.search(r'\| naive \| [^|]+ \| ([0-9.]+) ± ([0-9.]+) \|', flow)
    p = np.array([r['returned_episode_solved'] for r in rows
                  if r['policy'] == 'flow' and r['method'] == 'naive'
                  and r['delay'] == 2])
    self.assertLen(p, 2)
    self.assertAlmostEqual(float(cell.group(1)), p.mean(), places=3)
    self.assertAlmostEqual(float(cell.group(2)),
                           np.sqrt(np.sum(p * (1 - p)) / 4) / 2, places=3)
    # Per-level rows for every level and method.
    for level in SUITE_LEVELS:
      for method in ('naive', 'realtime'):
        self.assertIn(f'| {level} {method} |', flow)
    for name in ('mean_solve_rate_vs_delay.png',
                 'per_level_solve_rate_vs_delay.png'):
      with open(os.path.join(self.out, name), 'rb') as f:
        self.assertEqual(f.read(8), PNG)

  def test_rerun_redoes_nothing(self):
    path = os.path.join(self.out, 'eval_dd', 'results.csv')
    before = os.path.getmtime(path)
    logs = []
    benchmark.run(_benchmark_config(self.out), log=logs.append)
    skipped = [l for l in logs if 'finished earlier' in l]
    self.assertLen(skipped, 7)
    self.assertTrue(all(l.startswith('[benchmark]') for l in skipped))
    self.assertEqual(before, os.path.getmtime(path))

  def test_rerun_with_other_policies_redoes_the_report(self):
    # A finished run re-run with fewer (or more) policies: every training
    # and evaluation stage is skipped, the report covers the new list.
    out = tempfile.mkdtemp()
    shutil.rmtree(out)
    shutil.copytree(self.out, out)
    config = _benchmark_config(out)
    config.policies = 'flow'
    logs = []
    benchmark.run(config, log=logs.append)
    # expert, data, flow_train, flow_eval.
    self.assertLen([l for l in logs if 'finished earlier' in l], 4)
    self.assertLen([l for l in logs if 'report: made from' in l], 1)
    with open(os.path.join(out, 'report.md')) as f:
      report = f.read()
    self.assertIn('### flow', report)
    self.assertNotIn('### discrete', report)
    rows = results.read_results(os.path.join(out, 'results.csv'))
    self.assertEqual({r['policy'] for r in rows}, {'flow'})


if __name__ == '__main__':
  absltest.main()
