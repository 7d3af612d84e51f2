"""End-to-end test of the quickstart on a shrunken configuration.

Every stage runs for real (PPO, data, flow and DD training, both sweeps,
report) at toy sizes; the test checks every output is there and well formed,
that a re-run skips finished stages, and that an interrupted evaluation
resumes without redoing finished rows.
"""

import csv
import json
import os
import tempfile

from absl.testing import absltest

from configs import quickstart as quickstart_config
from rtc.common.base import cache
from rtc.common.bc import results
from rtc.common.bc import summary
from rtc.common.bc import sweep
from rtc import quickstart


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
    quickstart.run(_config(cls.out), log=cls.logs.append)

  def test_outputs_exist_and_are_well_formed(self):
    with open(os.path.join(self.out, 'results.csv'), newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
    self.assertEqual(tuple(reader.fieldnames), results.COMBINED_COLUMNS)
    # 2 policies x 2 methods x 2 delays (s = max(1, d)) x 1 level.
    self.assertLen(rows, 8)
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
      self.assertEqual(r['run_dir'], f'logs-{r["policy"]}/quickstart')
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
    pipe = quickstart.make_pipeline(_config(self.out))
    for stage in pipe.stages:
      self.assertIsNotNone(pipe.finished(stage.id), stage.id)
    self.assertTrue(any('left (estimate)' in l for l in self.logs))
    # The Settings are what the stages recorded.
    settings = report[report.index('## Settings'):]
    for who, path in (('flow training', 'logs-flow/quickstart/config.json'),
                      ('dd evaluation', 'eval_dd/eval_settings.json')):
      block = settings[settings.index(f'#### {who} (`{path}`)'):]
      block = block[block.index('```json\n') + 8:]
      with open(os.path.join(self.out, path)) as f:
        self.assertEqual(json.loads(block[:block.index('```')]),
                         json.load(f))

  def test_rerun_skips_finished_stages(self):
    before = os.path.getmtime(os.path.join(self.out, 'eval_dd',
                                           'results.csv'))
    logs = []
    quickstart.run(_config(self.out), log=logs.append)
    skipped = [l for l in logs if 'skipping' in l]
    self.assertLen(skipped, 7)
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
    quickstart.run(_config(out), log=logs.append)
    self.assertLen([l for l in logs if 'skipping' in l], 5)
    self.assertTrue(any('resuming: 3 of 4' in l for l in logs), logs)
    with open(path, newline='') as f:
      again = list(csv.DictReader(f))
    self.assertEqual(again[:3], rows[:3])
    self.assertLen(again, 4)


if __name__ == '__main__':
  absltest.main()
