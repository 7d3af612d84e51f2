"""The expert binaries as a job of two CPU processes equal one process.

Two local processes (1 forced host device each, a localhost coordinator,
gloo collectives) run the real binaries: `python -m rtc.expert.train` (2
levels x 1 seed, 2 PPO updates) then `rtc.expert.generate_data` on that run.
Each process holds one level. The checkpoints, statistics and .npz data
equal, byte for byte, those of this process with 2 forced devices (the same
per-device work), the resume state holds equal values, and a one-process
run resumes the job's run to update 3 exactly as it resumes its own (from a
resume state padded as older runs wrote it). Process 0 alone prints
progress.
"""

import os
import pickle
import shlex
import subprocess
import sys
import tempfile

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=2')

from absl.testing import absltest  # pylint: disable=g-import-not-at-top
import numpy as np

from configs import data as data_config
from configs import expert as expert_config
from rtc.common.base import cache
from rtc.common.cli import config_util
from rtc.common.env import data as data_lib
from rtc.common.env import envs
from rtc.common.testlib import job_testing
from rtc.expert import generate_data
from rtc.expert import store
from rtc.expert import train

LEVELS = ('s/h0_weak_thrust.json', 's/h1_thrust_over_ball.json')
JOB_TIMEOUT_S = 600  # Start-up, compilation, 2 updates and the data, cold.


def expert_config_for(logdir, num_updates):
  c = expert_config.get_config()
  c.levels = ','.join(LEVELS)
  c.logdir = logdir
  c.run_name = 'run'
  c.num_seeds = 1
  c.parallel_levels = 0
  c.num_envs = 4
  c.num_steps = 8
  c.num_minibatches = 2
  c.update_epochs = 1
  c.hidden_dim = 16
  c.num_updates = num_updates
  c.save_every = 1
  return c


def data_config_for(run_path):
  c = data_config.get_config()
  c.run_path = run_path
  c.num_envs = 4
  c.num_steps = 24  # 6 steps per env in chunks of 3.
  c.chunk_steps = 3
  return c


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


def _snapshot(path):
  with open(path, 'rb') as f:
    return pickle.load(f), pickle.load(f)


class TwoProcessExpertTest(absltest.TestCase):

  def test_two_processes_equal_one_and_resume(self):
    cache.enable_compilation_cache()
    root = tempfile.mkdtemp()
    names = [envs.level_name(l) for l in LEVELS]
    # The reference: this process, 2 devices.
    ref = train.train(expert_config_for(os.path.join(root, 'ref'), 2),
                      log=lambda _: None)
    generate_data.generate(data_config_for(ref), log=lambda _: None)
    # The job: two processes, 1 device each, train then generate.
    logdir = os.path.join(root, 'job')
    run_dir = os.path.join(logdir, 'run')
    port = job_testing.free_port()
    procs = []
    for pid in range(2):
      job = [f'--config.distributed.coordinator_address=localhost:{port}',
             '--config.distributed.num_processes=2',
             f'--config.distributed.process_id={pid}',
             '--config.distributed.initialization_timeout_s=60']
      train_cmd = [sys.executable, '-m', 'rtc.expert.train',
                   '--config=' + config_util.default_config('expert.py')
                  ] + job_testing.config_flags(
                      expert_config_for(logdir, 2),
                      expert_config.get_config()) + job
      data_cmd = [sys.executable, '-m', 'rtc.expert.generate_data',
                  '--config=' + config_util.default_config('data.py')
                 ] + job_testing.config_flags(
                     data_config_for(run_dir), data_config.get_config()) + job
      env = dict(os.environ, JAX_PLATFORMS='cpu',
                 PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                 XLA_FLAGS=job_testing.xla_flags(1))
      procs.append(subprocess.Popen(
          ['sh', '-c', shlex.join(train_cmd) + ' && ' + shlex.join(data_cmd)],
          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
          text=True))
    logs = []
    for proc in procs:
      try:
        logs.append(proc.communicate(timeout=JOB_TIMEOUT_S))
      except subprocess.TimeoutExpired:
        for p in procs:
          p.kill()
        self.fail(f'the job ran past {JOB_TIMEOUT_S} s')
    self.assertEqual([p.returncode for p in procs], [0, 0], logs)

    for name in names:
      for update in (1, 2):
        for path in (store.policy_path, store.stats_path):
          self.assertEqual(_read(path(run_dir, 0, update, name)),
                           _read(path(ref, 0, update, name)),
                           (name, update))
      a = data_lib.data_path(run_dir, name)
      with np.load(a) as x, np.load(data_lib.data_path(ref, name)) as y:
        for k in data_lib.KEYS:
          np.testing.assert_array_equal(x[k], y[k], err_msg=f'{name} {k}')
    # The resume state holds the same values (its pickle's bytes may differ:
    # the gathered arrays' dtype objects are memoised differently).
    saved = [_snapshot(os.path.join(d, train.RESUME_DIR, 'levels_0-1.pkl'))
             for d in (run_dir, ref)]
    self.assertEqual(saved[0][0], 2)
    self.assertEqual(saved[0][0], saved[1][0])
    self.assertLen(saved[0][1], len(saved[1][1]))
    for x, y in zip(saved[0][1], saved[1][1]):
      self.assertEqual(x.dtype, y.dtype)
      np.testing.assert_array_equal(x, y)
    self.assertTrue(os.path.exists(os.path.join(run_dir, 'config.json')))
    self.assertLen(os.listdir(os.path.join(run_dir, 'tb')), 1)
    # Progress and summaries come from process 0 only.
    self.assertIn('update 2/2', logs[0][0])
    self.assertRegex(logs[0][0], f'{names[1]}: .* episodes, mean return')
    self.assertNotIn('[expert train]', logs[1][0])
    self.assertNotIn('[generate]', logs[1][0])
    # One process resumes the job's run as it resumes its own, whose resume
    # state is rewritten as older runs kept it: padded (here to 3 units,
    # the pad repeating the last).
    resumed = []
    train.train(expert_config_for(logdir, 3), log=resumed.append)
    path = os.path.join(ref, train.RESUME_DIR, 'levels_0-1.pkl')
    update, leaves = _snapshot(path)
    with open(path, 'wb') as f:
      f.write(pickle.dumps(update) + pickle.dumps(
          [np.concatenate([x, x[-1:]]) for x in leaves]))
    train.train(expert_config_for(os.path.join(root, 'ref'), 3),
                log=lambda _: None)
    self.assertTrue(any('resuming from update 2' in l for l in resumed),
                    resumed)
    for name in names:
      self.assertEqual(_read(store.policy_path(run_dir, 0, 3, name)),
                       _read(store.policy_path(ref, 0, 3, name)))


if __name__ == '__main__':
  absltest.main()
