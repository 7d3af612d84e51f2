"""The latency bench's bad flags: one line naming the flag, exit status 2,
nothing written; and its policies (presets, sampling variants)."""

import os
import subprocess
import sys

from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver
from absl.testing import parameterized

from rtc.bench import latency

FLAGS = flags.FLAGS


class FlagsTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    FLAGS.mark_as_parsed()

  @parameterized.named_parameters(
      ('repeats', dict(repeats=49), r'^--repeats must be >= 50, got 49\.$'),
      ('unknown_method', dict(methods=['naive', 'beam']),
       r"^--methods: unknown method 'beam'"),
      ('no_naive', dict(methods=['realtime']), r"must include 'naive'"),
      ('batch_text', dict(batch_sizes=['1', 'x']),
       r"^--batch_sizes must be integers, got 'x'\.$"),
      ('batch_zero', dict(batch_sizes=['0']),
       r'^--batch_sizes must be >= 1, got 0\.$'),
      ('num_steps', dict(num_steps=0), r'^--num_steps must be >= 1'),
      ('simulated_delay', dict(simulated_delay=-1),
       r'^--simulated_delay must be >= 0'),
      ('negative_delay', dict(delay=-1), r'^--delay must be >= 0'),
      ('unknown_preset', dict(presets=['dd_x']),
       r"^--presets: unknown policy 'dd_x'"),
      ('no_policy', dict(presets=[]), r'^No policy to time'),
  )
  def test_bad_flag(self, values, pattern):
    with flagsaver.flagsaver(**values):
      with self.assertRaisesRegex(ValueError, pattern):
        latency.check_flags()

  def test_default_presets_are_the_preset_configs_policies(self):
    # Every default policy must exist in the default --quickstart_preset's
    # config (the default command once stopped on dd_discrete_rtc); the
    # training-time policies are timed on their twins.
    with flagsaver.flagsaver(presets=None, run_paths=[]):
      presets, _ = latency.check_flags()
      self.assertEqual(presets, ['flow', 'dd', 'dd_uniform',
                                 'dd_token_levels', 'dd_discrete_rtc'])
    with flagsaver.flagsaver(presets=None, run_paths=[],
                             quickstart_preset='test'):
      self.assertEqual(latency.check_flags()[0], ['flow', 'dd'])

  def test_policies_and_their_range_checks(self):
    with flagsaver.flagsaver(quickstart_preset='variants,test', obs_dim=8):
      policies = latency.preset_policies(['flow', 'dd'])
      subjects = latency.subjects_for(policies)
      # Masked DD as configured (early start and early stop off), then
      # with each on; each with a simulated-delay twin for training_time.
      self.assertEqual(
          [(s.name, s.sampling, s.only, s.policy.config.simulated_delay)
           for s in subjects],
          [('flow', '', (), None), ('flow', '', ('training_time',), 4),
           ('dd', 'early_start=False;early_stop=False', (), None),
           ('dd', 'early_start=False;early_stop=False', ('training_time',),
            4),
           ('dd', 'early_start=True;early_stop=False', (), None),
           ('dd', 'early_start=True;early_stop=False', ('training_time',), 4),
           ('dd', 'early_start=False;early_stop=True', (), None),
           ('dd', 'early_start=False;early_stop=True', ('training_time',),
            4)])
      self.assertEqual(latency.check_subjects(subjects), ('flow', 2, 2))
      with flagsaver.flagsaver(delay=5):
        with self.assertRaisesRegex(ValueError, r'--delay must be in \[0, '
                                    r'H/2 = 4\], got 5'):
          latency.check_subjects(subjects)
      with flagsaver.flagsaver(delay=3, execute_horizon=6):
        with self.assertRaisesRegex(ValueError, r'--execute_horizon must be '
                                    r'in \[max\(1, d\), H - d\] = \[3, 5\]'):
          latency.check_subjects(subjects)
      with self.assertRaisesRegex(ValueError, 'No flow policy'):
        latency.check_subjects(subjects[2:])
      with self.assertRaisesRegex(ValueError, "Two policies are named 'dd'"):
        latency.subjects_for(policies[1:] * 2)

  def test_command_line(self):
    out = self.create_tempdir().full_path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               BUILD_WORKING_DIRECTORY=out)
    p = subprocess.run(
        [sys.executable, '-m', 'rtc.bench.latency', '--repeats=3',
         '--output=latency.csv'], env=env, capture_output=True, text=True,
        timeout=300, check=False)
    self.assertEqual((p.returncode, p.stdout), (2, ''))
    self.assertEqual(p.stderr.strip().splitlines()[-1],
                     'error: --repeats must be >= 50, got 3.')
    self.assertEqual(os.listdir(out), [])


if __name__ == '__main__':
  absltest.main()
