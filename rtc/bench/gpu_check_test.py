"""`tools/gpu_check.sh --smoke` runs every check at tiny sizes on CPU."""

import os
import subprocess
import sys

from absl.testing import absltest

from rtc.common.base import paths

SCRIPT = os.path.join(paths.repo_root(), 'tools', 'gpu_check.sh')
ROWS = (
    'flow training step (2 levels x batch 8): device memory',
    'flow training step (2 levels x batch 8)',
    'dd training step (2 levels x batch 8): device memory',
    'dd training step (2 levels x batch 8)',
    'flow realtime evaluation (2 levels x 4 envs): device memory',
    'flow action, batch 1', 'flow realtime_action, batch 4',
    'dd action (cpu-tuned ops), batch 1', 'dd action (plain ops), batch 4',
    'dd realtime_action (plain ops), batch 4',
    'Kinetix env steps (2 levels x 4 envs)',
    'PPO, paper preset, 2 levels x 1 seeds')


class GpuCheckSmokeTest(absltest.TestCase):

  def test_smoke_prints_the_table(self):
    out = os.path.join(self.create_tempdir().full_path, 'table.md')
    env = dict(os.environ, PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(['bash', SCRIPT, '--smoke', f'--out={out}'],
                          env=env, capture_output=True, text=True,
                          check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with open(out) as f:
      table = f.read()
    lines = {l.split('|')[1].strip(): l.split('|')[2].strip()
             for l in table.splitlines() if l.startswith('| ')}
    for row in ROWS:
      match = [k for k in lines if k.startswith(row)]
      self.assertTrue(match, f'{row!r} missing from\n{table}')
    self.assertIn('cpu', lines['backend'])
    memory = lines['flow training step (2 levels x batch 8): device memory']
    self.assertRegex(memory, r'^[0-9.]+ (MiB|GiB)$')
    self.assertGreater(float(memory.split()[0]), 0.0)
    ppo = [v for k, v in lines.items() if k.startswith('PPO')][0]
    self.assertIn('update 2/2', ppo)
    self.assertIn('solved', ppo)
    # Solve rates were printed after every update.
    self.assertIn('update 1/2', proc.stdout)
    self.assertIn('steps/s', lines['Kinetix env steps (2 levels x 4 envs)'])


if __name__ == '__main__':
  absltest.main()
