"""A cost-adjusted evaluation end to end, and its bad input.

A tiny flow run (random weights on the tiniest packaged level) is evaluated
with `cost_adjusted=True`: from a latency CSV, the rows carry d0, the d each
method ran at, and the ratio; measured (no CSV), flow naive's own ratio is
1 and the measurement is left in latency.csv. Bad latency input stops the
evaluation with one line before anything is written.
"""

import csv
import dataclasses
import os

from absl.testing import absltest
import jax
import numpy as np

from configs import flow_eval as flow_eval_config
from rtc.common.base import cache
from rtc.common.bc import cost
from rtc.common.bc import evaluate
from rtc.common.bc import runs
from rtc.common.core import registry
from rtc.common.env import envs
from rtc.common.testlib import testing


def make_flow_run(root: str) -> str:
  """<root>/logs-flow/run: config.json and epoch 0's random policy."""
  run_dir = os.path.join(root, 'logs-flow', 'run')
  model = dict(testing.TINY_BACKBONE)
  policy = registry.make_policy('flow')(model, testing.TINY_OBS_DIM,
                                        testing.ACTION_DIM)
  name = envs.level_name(testing.TINY_LEVEL)
  runs.write_run_config(run_dir, {
      'kind': 'flow', 'levels': [testing.TINY_LEVEL], 'worlds_dir': '',
      'level_names': [name], 'obs_dim': testing.TINY_OBS_DIM,
      'action_dim': testing.ACTION_DIM,
      'model': dataclasses.asdict(policy.config)})
  params = jax.tree.map(lambda x: np.asarray(x)[None],
                        policy.init(jax.random.key(0)))
  runs.save_level_params(run_dir, 0, [name], params)
  return run_dir


def latency_csv(path, policy='flow', realtime=0.0034, median=None):
  """flow naive 2 ms; realtime `realtime` s (1.7x by default)."""
  rows = []
  for method, t in (('naive', 0.002 if median is None else median),
                    ('realtime', realtime)):
    rows.append({'device': 'cpu: test', 'batch': 1, 'policy': policy,
                 'kind': 'flow', 'method': method, 'sampling': '',
                 'num_steps': 1, 'delay': 2, 'execute_horizon': 2,
                 'timed_calls': 50, 'median_s': t, 'p90_s': 0.004,
                 'reference': policy})
  return cost.write_csv(path, cost.with_ratios(rows))


class CostEvalTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root = absltest.get_default_test_tmpdir()
    cls.run_dir = make_flow_run(cls.root)

  def config(self, **kwargs):
    c = flow_eval_config.get_config()
    c.num_evals = 2
    c.num_flow_steps = 1
    c.delays = '0,2'
    c.execute_horizons = 'min'
    c.methods = 'naive,realtime'
    c.cost_adjusted = True
    for k, v in kwargs.items():
      setattr(c, k, v)
    return c

  def evaluate(self, out, **kwargs):
    return evaluate.evaluate(self.config(**kwargs), self.run_dir,
                             os.path.join(self.root, out), None, 'flow',
                             log=lambda _: None)

  def test_rows_carry_d0_d_and_ratio(self):
    path = latency_csv(os.path.join(self.root, 'latency.csv'))
    with open(self.evaluate('eval_csv', latency_csv=path),
              newline='') as f:
      rows = list(csv.DictReader(f))
    got = sorted((r['method'], r['d0'], r['delay'], r['execute_horizon'],
                  r['latency_ratio']) for r in rows)
    # realtime: 1.7 x d0 = 2 -> round(3.4) = 3, s = 3.
    self.assertEqual(got, [('naive', '0', '0', '1', '1'),
                           ('naive', '2', '2', '2', '1'),
                           ('realtime', '0', '0', '1', '1.7'),
                           ('realtime', '2', '3', '3', '1.7')])

  def test_measured_by_default(self):
    out = os.path.join(self.root, 'eval_measured')
    path = self.evaluate('eval_measured', methods='naive', delays='1')
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    # A flow policy is its own reference: naive's ratio is exactly 1.
    self.assertEqual([(r['d0'], r['delay'], r['latency_ratio'])
                      for r in rows], [('1', '1', '1')])
    measured = cost.read_csv(os.path.join(out, cost.MEASURED_FILE))
    self.assertEqual([(r['policy'], r['method']) for r in measured],
                     [('flow', 'naive')])
    self.assertEqual(int(measured[0]['timed_calls']), 50)

  def test_bad_latency_input_writes_nothing(self):
    root = self.create_tempdir().full_path
    bad = {
        'nan': (latency_csv(os.path.join(root, 'nan.csv'),
                            realtime=float('nan')), "median_s='nan'"),
        'zero': (latency_csv(os.path.join(root, 'zero.csv'), median=0.0),
                 "median_s='0'"),
        'other_policy': (latency_csv(os.path.join(root, 'other.csv'),
                                     policy='dd'),
                         "no rows for policy 'flow'"),
    }
    unknown = os.path.join(root, 'unknown.csv')
    with open(bad['nan'][0]) as f:
      text = f.read().replace(',nan,', ',0.001,').replace(',realtime,',
                                                          ',beam,')
    with open(unknown, 'w') as f:
      f.write(text)
    bad['unknown_method'] = (unknown, "unknown method 'beam'")
    for name, (path, pattern) in bad.items():
      out = f'bad_{name}'
      with self.assertRaises(ValueError, msg=name) as e:
        self.evaluate(out, latency_csv=path)
      self.assertRegex(str(e.exception), pattern)
      self.assertNotIn('\n', str(e.exception))
      self.assertFalse(os.path.exists(os.path.join(self.root, out)), name)
    with self.assertRaisesRegex(ValueError, 'needs a latency source'):
      self.evaluate('bad_source', measure_latency=False)
    self.assertFalse(os.path.exists(os.path.join(self.root, 'bad_source')))


if __name__ == '__main__':
  absltest.main()
