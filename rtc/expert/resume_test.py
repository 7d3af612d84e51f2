"""Data generation resumes: a killed job's re-run ends with the same files.

A fake expert run (3 small levels, one random expert each) is generated once
without interruption (the reference). The real binary then runs on a copy,
is killed with SIGKILL after its first progress line (every level part-way),
and is run again (in this process, reusing the reference's jitted programs):
the files equal the reference's and no temporary file is left. A further run skips every level; a run after one file is deleted and
another truncated regenerates exactly those two.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

from absl.testing import absltest
import jax
import numpy as np

from configs import data as data_config
from rtc.common.base import cache
from rtc.common.cli import config_util
from rtc.common.env import envs
from rtc.common.testlib import job_testing
from rtc.expert import agent as agent_lib
from rtc.expert import generate_data
from rtc.expert import level_files
from rtc.expert import store

LEVELS = ('s/h0_weak_thrust.json', 's/h1_thrust_over_ball.json',
          's/h2_one_wheel_car.json')
TIMEOUT_S = 300
NOISE = ('Unable to initialize backend', 'Loading XLA:CPU AOT result')


def make_run(run_dir):
  """An expert run: one random checkpoint per level (solve rate 1)."""
  levels = envs.load_levels(LEVELS)
  env = envs.BatchedEnv.for_levels(levels, 1, obs_history=4,
                                   include_prev_action=True)
  agent = agent_lib.ExpertAgent(
      env.obs_dim(levels.level(0)), env.action_dim,
      int(levels.static_params.num_motor_bindings), hidden_dim=16)
  for i, name in enumerate(levels.names):
    params = agent.init(jax.random.key(i))
    store.write_checkpoint(run_dir, 0, 1, name, params,
                           {store.SOLVED: 1.0, store.RETURNS: 1.0,
                            store.LENGTHS: 10.0})
  return levels.names


def data_config_for(run_path):
  c = data_config.get_config('quickstart')
  c.run_path = run_path
  c.num_envs = 2
  c.num_steps = 2 * 200  # 200 steps per env in 100 calls of 2.
  c.chunk_steps = 2
  return c


class ResumeTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.root, ignore_errors=True)
    cls.ref = os.path.join(cls.root, 'ref')
    cls.names = make_run(cls.ref)
    cls.ref_paths = generate_data.generate(data_config_for(cls.ref),
                                           log=lambda _: None)

  def _start(self, run_dir):
    cmd = [sys.executable, '-m', 'rtc.expert.generate_data',
           '--config=' + config_util.default_config('data.py') + ':quickstart'
          ] + job_testing.config_flags(data_config_for(run_dir),
                                       data_config.get_config('quickstart'))
    env = dict(os.environ, JAX_PLATFORMS='',
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # As a user's shell has it.
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)

  def _run(self, run_dir):
    proc = self._start(run_dir)
    out, _ = proc.communicate(timeout=TIMEOUT_S)
    self.assertEqual(proc.returncode, 0, out)
    # Warm cache: no false XLA:CPU cache lines, no backend probe.
    for noise in NOISE:
      self.assertNotIn(noise, out)
    return out

  def _assert_like_reference(self, run_dir):
    data_dir = os.path.join(run_dir, 'data')
    for name, ref in zip(self.names, self.ref_paths):
      path = os.path.join(data_dir, name + '.npz')
      with np.load(path) as a, np.load(ref) as b:
        self.assertEqual(sorted(a.files), sorted(b.files))
        for k in b.files:
          np.testing.assert_array_equal(a[k], b[k], err_msg=f'{name} {k}')
    self.assertEqual(sorted(os.listdir(data_dir)),
                     sorted(n + '.npz' for n in self.names))

  def test_killed_job_rerun_gives_the_same_files(self):
    run_dir = os.path.join(self.root, 'killed')
    shutil.copytree(self.ref, run_dir, ignore=shutil.ignore_patterns('data'))
    proc = self._start(run_dir)
    lines = []
    for line in proc.stdout:
      lines.append(line)
      if 'env steps/s' in line:
        proc.send_signal(signal.SIGKILL)
        break
    proc.communicate(timeout=TIMEOUT_S)
    self.assertEqual(proc.returncode, -signal.SIGKILL, ''.join(lines))
    data_dir = os.path.join(run_dir, 'data')
    left = os.listdir(data_dir)
    # Killed part-way: temporary files only, no level's .npz.
    self.assertTrue(left, 'nothing written before the kill')
    self.assertFalse([f for f in left if not f.startswith('.tmp')], left)
    # The re-run, in this process: it reuses the reference's jitted
    # programs (the same levels and sizes) instead of tracing Kinetix's
    # step again.
    programs = dict(generate_data._PROGRAMS)
    (init, run), = programs.values()
    sizes = (init._cache_size(), run._cache_size())
    out = []
    generate_data.generate(data_config_for(run_dir), log=out.append)
    self.assertNotIn('skipped', '\n'.join(out))
    self.assertEqual(dict(generate_data._PROGRAMS), programs)
    self.assertEqual((init._cache_size(), run._cache_size()), sizes)
    self._assert_like_reference(run_dir)

    # A finished job's re-run skips every level and rewrites nothing.
    stamps = [os.stat(p).st_mtime_ns for p in
              (os.path.join(run_dir, 'data', n + '.npz') for n in self.names)]
    out = self._run(run_dir)
    for name in self.names:
      self.assertIn(f'{name}.npz is complete, skipped', out)
    self.assertNotIn('env steps/s', out)
    self.assertEqual(stamps, [os.stat(os.path.join(
        run_dir, 'data', n + '.npz')).st_mtime_ns for n in self.names])

    # One file lost, one cut short (as a non-atomic writer would leave it):
    # exactly those two are generated again, equal to the reference.
    os.remove(os.path.join(run_dir, 'data', self.names[1] + '.npz'))
    cut = os.path.join(run_dir, 'data', self.names[2] + '.npz')
    with open(cut, 'rb') as f:
      head = f.read(os.path.getsize(cut) // 2)
    with open(cut, 'wb') as f:
      f.write(head)
    out = self._run(run_dir)
    self.assertIn(f'{self.names[0]}.npz is complete, skipped', out)
    self.assertNotIn(f'{self.names[1]}.npz is complete', out)
    self.assertIn(f'{self.names[2]}.npz unreadable', out)
    self.assertIn('2 level(s)', out)
    self._assert_like_reference(run_dir)

  def test_other_settings_are_not_complete(self):
    path = self.ref_paths[0]
    with np.load(path) as z:
      meta = str(z[level_files.META])
      specs = {k: (z[k].shape, z[k].dtype) for k in generate_data.FIELDS}
    self.assertIsNone(level_files.incomplete(path, specs, meta))
    self.assertEqual(level_files.incomplete(path, specs, meta + ' '),
                     'written with other settings')
    bigger = dict(specs, obs=((1,) + specs['obs'][0][1:], np.float32))
    self.assertRegex(level_files.incomplete(path, bigger, meta),
                     r'^obs is float32\[')


if __name__ == '__main__':
  absltest.main()
