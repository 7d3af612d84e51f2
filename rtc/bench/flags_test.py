"""The bench and plot binaries refuse out-of-range flags with one line.

Each case runs the real binary (`python -m ...`): exit status 2, nothing on
stdout, and exactly one `error:` line naming the flag and its range, before
any work. check_flags itself is tested in-process.
"""

import os
import subprocess
import sys

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized

from rtc.common.base import validate

COUNT = r'must be >= 1 \(an integer\)'
EACH = ', each of a comma-separated list'
CASES = (
    ('data', 'rtc.bench.data', '--steps=0', rf'--steps {COUNT}, got 0\.'),
    ('dd_batches', 'rtc.bench.dd', '--batch_sizes=1,0',
     rf"--batch_sizes {COUNT}{EACH}, got '0'\."),
    ('dd_bins', 'rtc.bench.dd', '--dd_num_bins=1',
     r'--dd_num_bins must be >= 2 \(an integer\), got 1\.'),
    ('dd_guidance', 'rtc.bench.dd_guidance', '--guidance=10,-1',
     rf"--guidance must be >= 0 \(a finite number\){EACH}, got '-1'\."),
    ('dd_learning', 'rtc.bench.dd_learning', '--steps=300,x',
     rf"--steps {COUNT}{EACH}, got 'x'\."),
    ('flow', 'rtc.bench.flow', '--repeats=0', rf'--repeats {COUNT}, got 0\.'),
    ('import_time', 'rtc.bench.import_time', '--rounds=0',
     rf'--rounds {COUNT}, got 0\.'),
    ('gpu_check', 'rtc.bench.gpu_check', '--ppo_seconds=nan',
     r'--ppo_seconds must be > 0 \(a finite number\), got nan\.'),
    ('sweep_program', 'rtc.bench.sweep_program', '--num_evals=0',
     rf'--num_evals {COUNT}, got 0\.'),
    ('level_survey_results', 'rtc.bench.level_survey',
     '--from_results=missing.csv', r'Results file \S*missing\.csv not found: '
     r'run an evaluation first or check --from_results\.'),
    ('plot', 'rtc.plot', '--execute_horizon=0',
     r'--execute_horizon must be >= 1 \(an integer\), or unset, got 0\.'),
)


class BinaryFlagsTest(parameterized.TestCase):

  @parameterized.named_parameters(*CASES)
  def test_refused_with_one_line(self, module, arg, message):
    # MPLCONFIGDIR: the test sandbox has no writable home for matplotlib.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               BUILD_WORKING_DIRECTORY=self.create_tempdir().full_path,
               MPLCONFIGDIR=self.create_tempdir().full_path)
    p = subprocess.run([sys.executable, '-m', module, arg], env=env,
                       capture_output=True, text=True, timeout=300,
                       check=False)
    self.assertEqual((p.returncode, p.stdout), (2, ''), p.stderr)
    self.assertRegex(p.stderr, rf'^error: {message}\n$')


def _flags(*args):
  fv = flags.FlagValues()
  flags.DEFINE_integer('n', 3, '', flag_values=fv)
  flags.DEFINE_integer('h', None, '', flag_values=fv)
  flags.DEFINE_list('sizes', ['1', '8'], '', flag_values=fv)
  flags.DEFINE_string('gs', '0,2.5', '', flag_values=fv)
  fv(['prog', *args])
  return fv


TABLE = {'n': validate.COUNT, 'h': validate.Rule(int, lo=1, optional=True),
         'sizes': validate.COUNT, 'gs': validate.NON_NEGATIVE}


class CheckFlagsTest(absltest.TestCase):

  def test_valid_values_pass(self):
    validate.check_flags(TABLE, _flags())
    validate.check_flags(TABLE, _flags('--n=1', '--h=1', '--gs=0'))

  def test_each_bound_holds(self):
    for arg, got in (('--n=0', '0'), ('--sizes=1,2.5', "'2.5'"),
                     ('--gs=1,inf', "'inf'"), ('--h=-1', '-1')):
      with self.subTest(arg):
        name = arg[2:arg.index('=')]
        with self.assertRaisesRegex(ValueError, rf'^--{name} must be .*, got '
                                    rf'{got}\.$'):
          validate.check_flags(TABLE, _flags(arg))


if __name__ == '__main__':
  absltest.main()
