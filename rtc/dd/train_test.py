"""End-to-end test of discrete-diffusion training and evaluation.

The training loop and sweep are the shared ones (tested in depth in
rtc/common/bc/train_test.py and through the flow policy); this checks the DD
policy runs through them unchanged: bin accuracy in TensorBoard, and a sweep
of a model trained with a simulated delay, which adds the `training_time`
method.
"""

import csv
import os

from absl.testing import absltest

from configs import dd as dd_config
from configs import dd_eval as dd_eval_config
from rtc.common.base import cache
from rtc.common.bc import checkpoints
from rtc.common.bc import evaluate
from rtc.common.bc import summary
from rtc.common.bc import train
from rtc.common.testlib import testing
from rtc.dd import model as dd_model

LEVEL_NAME = 'worlds_s_h0_weak_thrust'


def train_config(run_path, logdir, **overrides):
  c = dd_config.get_config()
  c.model.num_bins = 32
  c.model.bin_embedding_dim = 4
  c.model.simulated_delay = 2
  return testing.tiny_bc_config(c, run_path, logdir, **overrides)


class DDTrainEvalTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root, cls.expert = testing.temp_expert_run(cls)
    cls.run_dir = train.train_and_evaluate(
        train_config(cls.expert, os.path.join(cls.root, 'logs')),
        dd_model.make_policy, 'dd', log=lambda _: None)

  def test_training_outputs(self):
    self.assertEqual(checkpoints.epoch_dirs(self.run_dir), [0, 1])
    scalars = summary.read_scalars(os.path.join(self.run_dir, 'tb'))
    for tag in ('train/loss', 'train/bin_accuracy', 'train/grad_norm',
                f'train/{LEVEL_NAME}/bin_accuracy'):
      self.assertIn(tag, scalars)
    acc = [v for _, v in scalars['train/bin_accuracy']]
    self.assertGreater(acc[-1], acc[0])

  def test_sweep_adds_training_time(self):
    c = dd_eval_config.get_config()
    c.num_evals = 4
    c.num_flow_steps = 2
    c.delays = '1'
    c.execute_horizons = '2'
    c.methods = 'naive'
    out = os.path.join(self.root, 'eval')
    path = evaluate.evaluate(c, self.run_dir, out, dd_model.make_policy, 'dd',
                             log=lambda _: None)
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertEqual(sorted(r['method'] for r in rows),
                     ['naive', 'training_time'])
    with self.assertRaisesRegex(ValueError, 'holds dd policies'):
      evaluate.evaluate(c, self.run_dir, out,
                        dd_model.make_policy, 'flow', log=lambda _: None)
    # The same settings resume (nothing left to do); other ones are refused
    # instead of mixing rows.
    lines = []
    evaluate.evaluate(c, self.run_dir, out, dd_model.make_policy, 'dd',
                      log=lines.append)
    self.assertTrue(any('already in' in line for line in lines))
    c.realtime.max_guidance_weight = 10.0
    with self.assertRaisesRegex(ValueError, r'other settings \(realtime'):
      evaluate.evaluate(c, self.run_dir, out, dd_model.make_policy, 'dd',
                        log=lambda _: None)
    settings = os.path.join(out, evaluate.SETTINGS_FILE)
    with open(settings, 'w') as f:
      f.write('{not json')
    with self.assertRaisesRegex(ValueError,
                                f'{settings} is unreadable.*delete it'):
      evaluate.evaluate(c, self.run_dir, out, dd_model.make_policy, 'dd',
                        log=lambda _: None)

  def test_decode_option_overrides_the_run(self):

    class Built(Exception):
      pass

    seen = []

    def make_policy(model, obs_dim, action_dim):
      del obs_dim, action_dim
      seen.append(dict(model))
      raise Built()

    c = dd_eval_config.get_config()
    for value in (None, 'mode'):
      c.decode = value
      with self.assertRaises(Built):
        evaluate.evaluate(c, self.run_dir, os.path.join(self.root, 'decode'),
                          make_policy, 'dd', log=lambda _: None)
    # None keeps the run's value; architecture options are the run's.
    self.assertEqual([m['decode'] for m in seen],
                     [dd_config.get_config().model.decode, 'mode'])
    self.assertEqual(seen[0]['num_bins'], 32)
    # early_start likewise; on this uniform run the model refuses it.
    c.decode = None
    c.early_start = True
    with self.assertRaises(Built):
      evaluate.evaluate(c, self.run_dir, os.path.join(self.root, 'early'),
                        make_policy, 'dd', log=lambda _: None)
    self.assertTrue(seen[-1]['early_start'])
    self.assertNotIn('early_start', seen[0])
    with self.assertRaisesRegex(ValueError, 'early_start'):
      dd_model.make_policy(seen[-1], 4, 2)


if __name__ == '__main__':
  absltest.main()
