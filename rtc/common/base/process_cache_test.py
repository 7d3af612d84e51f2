"""Every process of a multi-process job reuses its compiled programs.

A job of two CPU processes (one device each, a localhost coordinator) runs
twice on one cache root. Each process compiles a program over both
processes' devices (a multi-process one), one over its own device only, and
rtc.common.bc.distributed's collectives. On the second run neither process may
compile anything: process 1 loads its programs from its own directory
(rtc.common.base.cache.use_process_cache). Before, JAX wrote only process 0's
programs, so process 1 compiled again on every run. Each process prints its
programs, cache hits and seconds spent compiling or loading them (the
numbers in the log). Measured on the 2-core CPU: process 1's warm run spent
24.0 s compiling before (0 of 4 programs from the cache), 0.2 s after.
"""

import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

from rtc.common.testlib import job_testing

TIMEOUT_S = 600

JOB = r"""
import json, sys
import jax, jax.numpy as jnp
import numpy as np
from jax import monitoring
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from ml_collections import config_dict
from rtc.common.base import cache
from rtc.common.bc import distributed

stats = {'programs': 0, 'compile_s': 0.0, 'hits': 0}
def on_duration(event, secs, **_):
  if event == '/jax/core/compile/backend_compile_duration':
    stats['compile_s'] += secs  # Compiling, or loading from the cache.
def on_event(event, **_):
  if event == '/jax/compilation_cache/compile_requests_use_cache':
    stats['programs'] += 1
  if event == '/jax/compilation_cache/cache_hits':
    stats['hits'] += 1
monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
cache.enable_compilation_cache()
pid = int(sys.argv[2])
distributed.initialize(config_dict.ConfigDict(dict(
    coordinator_address=sys.argv[1], num_processes=2, process_id=pid,
    initialization_timeout_s=60)))

def f(x):
  for i in range(40):
    x = jnp.tanh(x @ x.T + jnp.sin(x * i))
  return x

mesh = Mesh(np.array(jax.devices()), ('p',))
local = np.full((1, 16, 16), 0.01 * (pid + 1), np.float32)
glob = jax.make_array_from_process_local_data(
    NamedSharding(mesh, P('p')), local)
out = jax.jit(jax.vmap(f))(glob)                  # Over both processes.
mine = jax.jit(f)(jnp.asarray(local[0]) + 1.0)    # This process only.
jax.block_until_ready((out, mine))
distributed.barrier('done')
print('STATS ' + json.dumps(dict(stats, process=pid)), flush=True)
"""


def run_job(cache_root: str) -> list[dict]:
  """Both processes' stats."""
  port = job_testing.free_port()
  env = dict(os.environ, RTC_CACHE_DIR=cache_root, JAX_PLATFORMS='cpu',
             RTC_CACHE_MIN_COMPILE_SECS='0',
             XLA_FLAGS=job_testing.xla_flags(1),
             PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
  procs = [subprocess.Popen(
      [sys.executable, '-c', JOB, f'localhost:{port}', str(pid)], env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for pid in range(2)]
  outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
  stats = []
  for p, out in zip(procs, outs):
    if p.returncode != 0:
      raise AssertionError(out)
    line = [l for l in out.splitlines() if l.startswith('STATS ')][-1]
    stats.append(json.loads(line[len('STATS '):]))
  return stats


class ProcessCacheTest(absltest.TestCase):

  def test_second_run_compiles_nothing_in_any_process(self):
    root = tempfile.mkdtemp()
    cold = run_job(root)
    warm = run_job(root)
    for s in cold + warm:
      print(('cold' if s in cold else 'warm'), s)
    for s in cold:
      self.assertEqual(s['hits'], 0, s)
      self.assertGreaterEqual(s['programs'], 3, s)
    for s in warm:  # Every program loaded from the cache.
      self.assertEqual(s['hits'], s['programs'], s)
    self.assertTrue(os.path.isdir(os.path.join(root, 'jax-process1')))


if __name__ == '__main__':
  absltest.main()
