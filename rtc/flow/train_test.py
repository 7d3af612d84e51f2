"""End-to-end tests of flow training and evaluation on a shrunken config.

Training and evaluation go through the same entry points as the binaries
(`train_and_evaluate`, `evaluate`) on the smallest packaged level. The loop's
own behaviour (resume, fine-tuning from `load_dir`, stopping on a NaN loss)
is tested in rtc/common/bc/train_test.py.
"""

import csv
import os
import pickle

from absl.testing import absltest
import numpy as np

from configs import flow as flow_config
from configs import flow_eval as flow_eval_config
from rtc.common.base import cache
from rtc.common.bc import checkpoints
from rtc.common.bc import evaluate
from rtc.common.bc import summary
from rtc.common.bc import sweep
from rtc.common.bc import train
from rtc.common.testlib import testing
from rtc.flow import model as flow_model
from rtc.flow import reference_testing

LEVEL_NAME = 'worlds_s_h0_weak_thrust'


def train_config(run_path, logdir, **overrides):
  return testing.tiny_bc_config(flow_config.get_config(), run_path, logdir,
                                **overrides)


class FlowTrainEvalTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root, cls.expert = testing.temp_expert_run(cls)
    cls.logdir = os.path.join(cls.root, 'logs')
    cls.logs = []
    c = train_config(cls.expert, cls.logdir)
    c.eval.execute_horizons = '4'
    c.eval.num_evals = 4
    c.eval.num_flow_steps = 2
    cls.run_dir = train.train_and_evaluate(c, flow_model.make_policy, 'flow',
                                           log=cls.logs.append)

  def test_outputs(self):
    self.assertEqual(self.run_dir, os.path.join(self.logdir, 'run'))
    self.assertEqual(checkpoints.epoch_dirs(self.run_dir), [0, 1])
    for e in (0, 1):
      self.assertTrue(os.path.exists(checkpoints.policy_path(
          self.run_dir, e, LEVEL_NAME)))
      self.assertTrue(os.path.exists(os.path.join(self.run_dir, str(e),
                                                  train.TRAIN_STATE)))
    scalars = summary.read_scalars(os.path.join(self.run_dir, 'tb'))
    for tag in ('train/loss', 'train/grad_norm', 'train/learning_rate',
                'train/epoch_time', f'train/{LEVEL_NAME}/loss',
                f'eval/{LEVEL_NAME}/solved_s4', 'eval/mean/solved_s4'):
      self.assertIn(tag, scalars)
    losses = [v for _, v in scalars['train/loss']]
    self.assertTrue(all(np.isfinite(losses)))
    self.assertLess(losses[-1], losses[0])
    solved = scalars[f'eval/{LEVEL_NAME}/solved_s4'][0][1]
    self.assertTrue(0.0 <= solved <= 1.0)
    self.assertTrue(any('eta' in l or 'left' in l for l in self.logs))

  def test_missing_run_path(self):
    with self.assertRaisesRegex(ValueError, 'run_path is required'):
      train.train_and_evaluate(train_config('', self.logdir),
                               flow_model.make_policy, 'flow')
    with self.assertRaisesRegex(FileNotFoundError, 'data'):
      train.train_and_evaluate(
          train_config(self.root, self.logdir), flow_model.make_policy,
          'flow')
    c = train_config(self.root, self.logdir)
    c.eval.execute_horizons = '1'
    c.eval.num_flow_steps = 0
    with self.assertRaisesRegex(ValueError,
                                'eval.num_flow_steps must be >= 1'):
      train.train_and_evaluate(c, flow_model.make_policy, 'flow')

  def _eval_config(self, methods='naive,realtime'):
    c = flow_eval_config.get_config()
    testing.shrink_model(c.model)
    c.num_evals = 4
    c.num_flow_steps = 2
    c.delays = '1'
    c.execute_horizons = '1,2'
    c.methods = methods
    return c

  def test_eval_results_and_resume(self):
    out = os.path.join(self.root, 'eval')
    logs = []
    path = evaluate.evaluate(self._eval_config(), self.run_dir, out,
                             flow_model.make_policy, 'flow', log=logs.append)
    with open(path, newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
    self.assertEqual(tuple(reader.fieldnames), sweep.COLUMNS)
    self.assertLen(rows, 4)  # 2 methods x 2 horizons x 1 level.
    self.assertEqual({(r['method'], r['execute_horizon']) for r in rows},
                     {('naive', '1'), ('naive', '2'), ('realtime', '1'),
                      ('realtime', '2')})
    self.assertEqual({r['level'] for r in rows},
                     {'worlds/s/h0_weak_thrust.json'})
    for r in rows:
      self.assertTrue(0.0 <= float(r['returned_episode_solved']) <= 1.0)
      self.assertGreater(float(r['returned_episode_lengths']), 0)
    # Interrupt: drop the last row, re-run: only that point is redone.
    with open(path, 'w', newline='') as f:
      w = csv.DictWriter(f, fieldnames=sweep.COLUMNS)
      w.writeheader()
      w.writerows(rows[:3])
    logs = []
    evaluate.evaluate(self._eval_config(), self.run_dir, out,
                      flow_model.make_policy, 'flow', log=logs.append)
    self.assertTrue(any('resuming: 3 of 4' in l for l in logs), logs)
    with open(path, newline='') as f:
      again = list(csv.DictReader(f))
    self.assertEqual(again[:3], rows[:3])
    self.assertEqual(again[3], rows[3])  # Same seed: the same result.
    # A third run does nothing.
    logs = []
    evaluate.evaluate(self._eval_config(), self.run_dir, out,
                      flow_model.make_policy, 'flow', log=logs.append)
    self.assertTrue(any('already in' in l for l in logs), logs)

  def test_eval_reference_format_directory(self):
    # The earlier implementation's layout: no config.json, its pickle format.
    ref_dir = os.path.join(self.root, 'reference_run')
    params = checkpoints.load_params(checkpoints.policy_path(
        self.run_dir, 1, LEVEL_NAME))
    ref = reference_testing.to_reference(params, 2)
    path = checkpoints.policy_path(ref_dir, 24, LEVEL_NAME)
    os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as f:
      pickle.dump(ref, f)
    c = self._eval_config(methods='naive')
    c.execute_horizons = '2'
    ours = evaluate.evaluate(c, self.run_dir, os.path.join(self.root, 'e1'),
                             flow_model.make_policy, 'flow',
                             log=lambda _: None)
    theirs = evaluate.evaluate(c, ref_dir, os.path.join(self.root, 'e2'),
                               flow_model.make_policy, 'flow',
                               log=lambda _: None)
    with open(ours) as f1, open(theirs) as f2:
      a, b = list(csv.DictReader(f1)), list(csv.DictReader(f2))
    self.assertLen(a, 1)
    for k in sweep.METRICS:
      np.testing.assert_allclose(float(a[0][k]), float(b[0][k]), atol=1e-6)

  def test_eval_errors(self):
    with self.assertRaisesRegex(FileNotFoundError, 'does not exist'):
      evaluate.evaluate(self._eval_config(), os.path.join(self.root, 'nope'),
                        self.root, flow_model.make_policy, 'flow')
    with self.assertRaisesRegex(ValueError, 'run_path is required'):
      evaluate.evaluate(self._eval_config(), '', self.root,
                        flow_model.make_policy, 'flow')


if __name__ == '__main__':
  absltest.main()
