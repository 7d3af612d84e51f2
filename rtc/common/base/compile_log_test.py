"""Tests for rtc.common.base.compile_log: a fresh process's programs, logged."""

import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

PROGRAM = r"""
import jax, jax.numpy as jnp
from rtc.common.base import cache
cache.enable_compilation_cache()
def doubled_sum(x):
  return (2 * x).sum()
jax.jit(doubled_sum)(jnp.arange(3.0)).block_until_ready()
"""


class CompileLogTest(absltest.TestCase):

  def _run(self, env):
    subprocess.run([sys.executable, '-c', PROGRAM], env=env, check=True,
                   capture_output=True)

  def test_one_line_per_trace_lowering_and_compile(self):
    root = tempfile.mkdtemp()
    log = os.path.join(root, 'log')
    env = dict(os.environ, RTC_CACHE_DIR=os.path.join(root, 'cache'),
               RTC_CACHE_MIN_COMPILE_SECS='0', RTC_COMPILE_LOG=log,
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop('TEST_TARGET', None)
    self._run(env)
    self._run(env)  # Its program now comes from the persistent cache.
    runs = []
    for name in sorted(os.listdir(log)):
      with open(os.path.join(log, name)) as f:
        rows = [l.rstrip('\n').split('\t') for l in f]
      for r in rows:
        self.assertLen(r, 6)
        self.assertEqual(r[0], '-')
        self.assertEqual(r[1], name[:-len('.tsv')])
        self.assertGreaterEqual(float(r[5]), 0.0)
      runs.append({(r[3], r[4]) for r in rows})
    self.assertLen(runs, 2)
    mine = {('trace', 'doubled_sum'), ('lower', 'jit(doubled_sum)')}
    self.assertContainsSubset(mine | {('miss', 'jit(doubled_sum)')},
                              runs[0] | runs[1])
    # One run compiled it and the other loaded it.
    kinds = sorted(k for run in runs for k, f in run
                   if f == 'jit(doubled_sum)' and k in ('hit', 'miss'))
    self.assertEqual(kinds, ['hit', 'miss'])

  def test_unset_writes_nothing(self):
    root = tempfile.mkdtemp()
    env = dict(os.environ, RTC_CACHE_DIR=os.path.join(root, 'cache'),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop('RTC_COMPILE_LOG', None)
    self._run(env)
    self.assertEqual(os.listdir(root), ['cache'])


if __name__ == '__main__':
  absltest.main()
