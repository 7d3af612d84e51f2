"""rtc.common.base.quiet drops exactly the false XLA:CPU cache lines."""

import logging
import os
import subprocess
import sys

from absl.testing import absltest

from rtc.common.base import quiet

LINES = [
    'E1206 cpu_aot_loader.cc:210] Loading XLA:CPU AOT result. Target machine '
    'feature +prefer-no-scatter is not  supported on the host machine.',
    'E1206 cpu_aot_loader.cc:210] Loading XLA:CPU AOT result. Target machine '
    'feature +prefer-no-gather is not  supported on the host machine.',
    'E1206 cpu_aot_loader.cc:210] Loading XLA:CPU AOT result. Target machine '
    'feature +avx512f is not  supported on the host machine.',
    'a real warning',
]

SCRIPT = """
import os, sys
from rtc.common.base import quiet
quiet.filter_stderr()
os.write(2, sys.argv[1].encode())
print('python stderr', file=sys.stderr)
"""


class FilterTest(absltest.TestCase):

  def _run(self, **env):
    p = subprocess.run(
        [sys.executable, '-c', SCRIPT, '\n'.join(LINES) + '\n'],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **env),
        capture_output=True, text=True, timeout=60, check=True)
    return p.stderr

  def test_drops_only_tuning_feature_lines(self):
    self.assertEqual(self._run(RTC_FULL_LOG=''),
                     '\n'.join(LINES[2:]) + '\npython stderr\n')

  def test_full_log_keeps_everything(self):
    self.assertEqual(self._run(RTC_FULL_LOG='1'),
                     '\n'.join(LINES) + '\npython stderr\n')

  def test_backend_probe_records_are_dropped(self):
    quiet.install_filters()
    logger = logging.getLogger('jax._src.xla_bridge')
    with self.assertLogs(logger, logging.INFO) as logs:
      logger.info("Unable to initialize backend 'tpu': no libtpu")
      logger.warning('a real warning')
    self.assertEqual([r.getMessage() for r in logs.records],
                     ['a real warning'])


if __name__ == '__main__':
  absltest.main()
