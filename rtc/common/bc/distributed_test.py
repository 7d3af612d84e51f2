"""A job of two CPU processes (2 devices each) equals one process (4 devices).

Two local processes with a localhost coordinator and gloo collectives run the
real binaries (`python -m rtc.flow.train`, then `rtc.flow.eval`): one epoch
of flow behaviour cloning on 3 tiny levels and an evaluation sweep. The
policies, optimiser state and results.csv rows equal those of this process
with 4 forced host devices, and a one-process run resumes the job's run. A
process that fails makes the other exit with one error line naming it, and
one killed mid-job makes the other exit, both within DEATH_TIMEOUT_S seconds
(heartbeat timeout HEARTBEAT_S). A value made by process 0 (the default run
name) is the one every process reads, and importing any binary's module
(flow, expert) starts no JAX backend.
"""

import csv
import os
import pickle
import shlex
import signal
import subprocess
import sys
import tempfile
import time

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=4')

from absl.testing import absltest  # pylint: disable=g-import-not-at-top
import numpy as np

from configs import flow as flow_config
from configs import flow_eval as flow_eval_config
from rtc.common.base import cache
from rtc.common.bc import checkpoints
from rtc.common.bc import distributed
from rtc.common.bc import evaluate
from rtc.common.bc import train
from rtc.common.cli import config_util
from rtc.common.env import envs
from rtc.common.testlib import job_testing
from rtc.common.testlib import testing
from rtc.flow import model as flow_model

LEVELS = ('s/h0_weak_thrust.json', 's/h1_thrust_over_ball.json',
          's/h2_one_wheel_car.json')
JOB_TIMEOUT_S = 1200  # The two-process training + sweep, cold (~6 min).
HEARTBEAT_S = 10
DEATH_TIMEOUT_S = 240  # Start-up, imports and data loading included.

# Process 1 of the dying job: joins, then is killed.
_DIE = """
import os, signal, sys
from ml_collections import config_dict
from rtc.common.bc import distributed
c = config_dict.ConfigDict(dict(coordinator_address=sys.argv[1],
    num_processes=2, process_id=1, heartbeat_timeout_s=int(sys.argv[2]),
    initialization_timeout_s=60))
distributed.initialize(c)
print('joined; dying', flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

# Both processes of a job ask for a value each would make differently.
_SHARED = """
import sys
from ml_collections import config_dict
from rtc.common.bc import distributed
pid = int(sys.argv[2])
c = config_dict.ConfigDict(dict(coordinator_address=sys.argv[1],
    num_processes=2, process_id=pid, initialization_timeout_s=60))
distributed.initialize(c)
print('shared:', distributed.shared_value(lambda: f'made by {pid}'))
"""


def train_config(expert, logdir, num_epochs=1):
  return testing.tiny_bc_config(flow_config.get_config(), expert, logdir,
                                num_epochs=num_epochs,
                                levels=','.join(LEVELS))


def eval_config():
  c = flow_eval_config.get_config()
  testing.shrink_model(c.model)
  c.step = 0
  c.num_evals = 2
  c.num_flow_steps = 1
  c.delays = '1'
  c.execute_horizons = 'min'
  c.methods = 'naive'
  return c


def job_flags(pid, port):
  return [f'--config.distributed.coordinator_address=localhost:{port}',
          '--config.distributed.num_processes=2',
          f'--config.distributed.process_id={pid}',
          f'--config.distributed.heartbeat_timeout_s={HEARTBEAT_S}',
          '--config.distributed.initialization_timeout_s=60']


def _read_rows(path):
  with open(path, newline='') as f:
    return sorted((tuple(sorted(r.items())) for r in csv.DictReader(f)))


class TwoProcessTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root = tempfile.mkdtemp()
    cls.expert = testing.make_expert_run(os.path.join(cls.root, 'expert'),
                                         level_ids=LEVELS)
    cls.names = [envs.level_name(l) for l in LEVELS]

  def _start(self, pid, port, tag, logdir=None, out=None, expert=None):
    """Process `pid` of a job: train then evaluate, or (no logdir) die."""
    py = [sys.executable, '-m']
    if logdir is None:
      cmd = 'exec ' + shlex.join([sys.executable, '-c', _DIE,
                                  f'localhost:{port}', str(HEARTBEAT_S)])
    else:
      job = job_flags(pid, port)
      train_cmd = py + ['rtc.flow.train', '--config=' +
                        config_util.default_config('flow.py')]
      train_cmd += job_testing.config_flags(
          train_config(expert or self.expert, logdir),
          flow_config.get_config()) + job
      eval_cmd = py + ['rtc.flow.eval', '--config=' +
                       config_util.default_config('flow_eval.py'),
                       f'--run_path={os.path.join(logdir, "run")}',
                       f'--output_dir={out}'] + job_testing.config_flags(
                           eval_config(), flow_eval_config.get_config()) + job
      cmd = shlex.join(train_cmd) + ' && ' + shlex.join(eval_cmd)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
               JAX_PLATFORMS='cpu',
               XLA_FLAGS=job_testing.xla_flags(2))
    out_f = open(os.path.join(self.root, f'{tag}{pid}.out'), 'w+')
    err_f = open(os.path.join(self.root, f'{tag}{pid}.err'), 'w+')
    proc = subprocess.Popen(['sh', '-c', cmd], env=env, stdout=out_f,
                            stderr=err_f)
    return proc, out_f, err_f

  def _wait(self, started, timeout):
    deadline = time.time() + timeout
    codes, logs = [], []
    for proc, out, err in started:
      try:
        codes.append(proc.wait(timeout=max(deadline - time.time(), 1)))
      except subprocess.TimeoutExpired:
        proc.kill()
        codes.append(None)
      out.seek(0)
      err.seek(0)
      logs.append((out.read(), err.read()))
      out.close()
      err.close()
    return codes, logs

  def test_two_processes_equal_one_and_resume(self):
    # The reference: this process, 4 devices, 2 epochs.
    ref_logdir = os.path.join(self.root, 'ref')
    ref_run = train.train_and_evaluate(
        train_config(self.expert, ref_logdir, num_epochs=2),
        flow_model.make_policy, 'flow', log=lambda _: None)
    ref_csv = evaluate.evaluate(eval_config(), ref_run,
                                os.path.join(self.root, 'ref_eval'),
                                flow_model.make_policy, 'flow',
                                log=lambda _: None)
    # The job: two processes, 2 devices each, 1 epoch.
    logdir = os.path.join(self.root, 'job')
    out = os.path.join(self.root, 'job_eval')
    port = job_testing.free_port()
    started = [self._start(i, port, 'job', logdir=logdir, out=out)
               for i in range(2)]
    codes, logs = self._wait(started, JOB_TIMEOUT_S)
    self.assertEqual(codes, [0, 0], logs)
    run_dir = os.path.join(logdir, 'run')
    for name in self.names:
      a = checkpoints.load_params(checkpoints.policy_path(run_dir, 0, name))
      b = checkpoints.load_params(checkpoints.policy_path(ref_run, 0, name))
      for k in b:
        for n in b[k]:
          np.testing.assert_array_equal(a[k][n], b[k][n], err_msg=k + n)
    states = []
    for d in (run_dir, ref_run):
      with open(os.path.join(d, '0', train.TRAIN_STATE), 'rb') as f:
        states.append(pickle.load(f))
    self.assertEqual(states[0]['step'], states[1]['step'])
    for x, y in zip(states[0]['opt_state'], states[1]['opt_state']):
      np.testing.assert_array_equal(x, y)
    rows = _read_rows(os.path.join(out, 'results.csv'))
    self.assertLen(rows, 3)
    self.assertEqual(rows, _read_rows(ref_csv))
    self.assertTrue(os.path.exists(os.path.join(run_dir, 'config.json')))
    # Progress lines come from process 0 only.
    self.assertIn('[flow train]', logs[0][0])
    self.assertIn('[flow eval]', logs[0][0])
    self.assertNotIn('[flow', logs[1][0])
    # Resuming the job's run in one process gives the reference's epoch 1.
    resumed = []
    train.train_and_evaluate(train_config(self.expert, logdir, num_epochs=2),
                             flow_model.make_policy, 'flow',
                             log=resumed.append)
    self.assertTrue(any('after epoch 0' in l for l in resumed), resumed)
    for name in self.names:
      a = checkpoints.load_params(checkpoints.policy_path(run_dir, 1, name))
      b = checkpoints.load_params(checkpoints.policy_path(ref_run, 1, name))
      for k in b:
        for n in b[k]:
          np.testing.assert_allclose(a[k][n], b[k][n], rtol=1e-6, atol=1e-7)

  def test_options(self):
    c = flow_config.get_config().distributed
    self.assertFalse(distributed.wanted(c))  # The defaults: one process.
    distributed.initialize(c)
    self.assertFalse(distributed.is_initialized())
    c.coordinator_address = 'localhost:1'
    self.assertTrue(distributed.wanted(c))
    with self.assertRaisesRegex(ValueError, 'missing num_processes, '
                                'process_id'):
      distributed.initialize(c)
    c.num_processes, c.process_id = 2, 2
    with self.assertRaisesRegex(ValueError, r'process_id=2 must be in'):
      distributed.initialize(c)
    c.auto = True
    with self.assertRaisesRegex(ValueError, 'auto=True takes its settings'):
      distributed.initialize(c)

  def test_binaries_start_no_backend_on_import(self):
    # jax.distributed.initialize must come before JAX's backend starts, so
    # the binaries' modules must not start it (Kinetix does when imported).
    for module in ('rtc.flow.train', 'rtc.flow.eval', 'rtc.expert.train',
                   'rtc.expert.generate_data'):  # One per process.
      code = (f'import {module}\nfrom jax._src import xla_bridge\n'
              'print("started:", xla_bridge.backends_are_initialized())')
      proc = subprocess.run(
          [sys.executable, '-c', code], capture_output=True, text=True,
          env=dict(os.environ, PYTHONPATH=os.pathsep.join(
              p for p in sys.path if p)), check=False)
      self.assertIn('started: False', proc.stdout,
                    module + proc.stderr[-2000:])

  def test_shared_value_is_process_0s(self):
    port = job_testing.free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
               JAX_PLATFORMS='cpu')
    procs = [subprocess.Popen(
        [sys.executable, '-c', _SHARED, f'localhost:{port}', str(pid)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for pid in range(2)]
    outs = [p.communicate(timeout=DEATH_TIMEOUT_S) for p in procs]
    for out, err in outs:
      self.assertIn('shared: made by 0\n', out, err[-2000:])

  def test_failed_process_stops_the_other(self):
    # Level 2 (process 1's only level) holds NaN actions: process 1 fails
    # loading it; process 0, which only reads its header, stops too.
    expert = testing.make_expert_run(os.path.join(self.root, 'bad_expert'),
                                     level_ids=LEVELS)
    path = os.path.join(expert, 'data', self.names[2] + '.npz')
    arrays = dict(np.load(path))
    arrays['action'][:] = np.nan
    np.savez(path, **arrays)
    port = job_testing.free_port()
    t0 = time.time()
    started = [self._start(i, port, 'bad', os.path.join(self.root, 'bad'),
                           os.path.join(self.root, 'bad_eval'), expert=expert)
               for i in range(2)]
    codes, logs = self._wait(started, DEATH_TIMEOUT_S)
    self.assertLess(time.time() - t0, DEATH_TIMEOUT_S)
    self.assertEqual(codes, [distributed.EXIT_CODE] * 2, logs)
    errors = [[l for l in err.splitlines() if l.startswith('error:')]
              for _, err in logs]
    self.assertLen(errors[1], 1, logs[1][1])
    self.assertRegex(errors[1][0], r'^error: process 1/2: ValueError: '
                     r'Dataset .*h2_one_wheel_car.npz holds non-finite')
    self.assertLen(errors[0], 1, logs[0][1])
    self.assertRegex(errors[0][0], r'^error: process 0/2: stopping because '
                     r'process 1/2 failed: ValueError: Dataset')

  def test_killed_process_stops_the_other(self):
    port = job_testing.free_port()
    t0 = time.time()
    started = [
        self._start(0, port, 'dead', os.path.join(self.root, 'dead'),
                    os.path.join(self.root, 'dead_eval')),
        self._start(1, port, 'dead')]
    codes, logs = self._wait(started, DEATH_TIMEOUT_S)
    self.assertLess(time.time() - t0, DEATH_TIMEOUT_S)
    self.assertEqual(codes[1], -signal.SIGKILL, logs)
    self.assertIsNotNone(codes[0], 'process 0 hung')
    self.assertNotEqual(codes[0], 0, logs)
    # Noticed by a collective (our line) or by JAX's heartbeat check.
    self.assertRegex(logs[0][1], 'lost contact with another process|'
                     'another task died', logs[0][1])


if __name__ == '__main__':
  absltest.main()
