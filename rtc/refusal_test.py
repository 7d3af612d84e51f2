"""Refusals of the real binaries write nothing and print one line.

A tiny DD run (one level, zero parameters, config.json) is evaluated by the
real `python -m rtc.dd.eval` with a delay its chunk size cannot take: the
refusal must come before the output directory is made (a new one stays
absent, an existing one unchanged), as one `error:` line with exit status 2
and none of JAX's backend-probe lines. An expert-run path that is a file
gets its own message.
"""

import os
import subprocess
import sys

from absl.testing import absltest
import jax
import numpy as np

from configs import data as data_config
from configs import dd as dd_config
from configs import dd_eval as dd_eval_config
from rtc import binary_testing
from rtc.common.bc import evaluate
from rtc.common.bc import runs
from rtc.common.bc import train
from rtc.common.env import envs
from rtc.common.testlib import testing
from rtc.dd import model as dd_model
from rtc.expert import generate_data

NOISE = ("Unable to initialize backend", "Loading XLA:CPU AOT result")


def make_dd_run(run_dir: str) -> None:
  """A DD run of TINY_LEVEL at epoch 0: config.json and zero parameters."""
  model = dd_eval_config.get_config().model.to_dict()
  for k, v in testing.TINY_BACKBONE.items():
    model[k] = v
  levels = envs.load_levels(testing.TINY_LEVEL)
  env = envs.BatchedEnv.for_levels(levels, 1)
  policy = dd_model.make_policy(model, env.plain_obs_dim(levels.level(0)),
                                env.action_dim)
  params = jax.tree.map(lambda s: np.zeros((1,) + s.shape, s.dtype),
                        policy.param_shapes())
  runs.write_run_config(run_dir, {
      'kind': 'dd', 'levels': [testing.TINY_LEVEL], 'worlds_dir': None,
      'model': model})
  runs.save_level_params(run_dir, 0, levels.names, params)


def run_binary(module: str, *args: str, cwd: str):
  env = dict(os.environ, JAX_PLATFORMS='',
             PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # As a user's shell has it.
  return subprocess.run([sys.executable, '-m', module, *args], env=env,
                        cwd=cwd, capture_output=True, text=True, timeout=300,
                        check=False)


class EvalRefusalTest(absltest.TestCase):

  def test_out_of_range_delay_writes_nothing(self):
    tmp = self.create_tempdir().full_path
    run_dir = os.path.join(tmp, 'logs-dd', 'run')
    make_dd_run(run_dir)
    existing = os.path.join(tmp, 'old_eval')
    os.makedirs(existing)
    with open(os.path.join(existing, 'results.csv'), 'w') as f:
      f.write('kept\n')
    before = binary_testing.tree_state(existing)
    for out in (os.path.join(tmp, 'new_eval'), existing):
      with self.subTest(out):
        p = run_binary('rtc.dd.eval', f'--run_path={run_dir}',
                       f'--output_dir={out}', '--config.delays=7', cwd=tmp)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r'^error: Delay 7 is out of range for '
                         r'H=\d+ \(need 0 <= d <= H/2\)\.\n$')
        for noise in NOISE:
          self.assertNotIn(noise, p.stderr)
    self.assertFalse(os.path.exists(os.path.join(tmp, 'new_eval')))
    self.assertEqual(binary_testing.tree_state(existing), before)


class RunPathIsAFileTest(absltest.TestCase):

  def test_each_run_path_option_says_it_is_a_file(self):
    tmp = self.create_tempdir()
    file = tmp.create_file('README.md', 'text').full_path
    data = data_config.get_config('quickstart')
    data.run_path = file
    bc = dd_config.get_config()
    bc.run_path = file
    bc.logdir = os.path.join(tmp.full_path, 'logs')
    cases = {
        '--config.run_path': lambda: generate_data.generate(
            data, log=lambda _: None),
        '--config.run_path ': lambda: train.train_and_evaluate(
            bc, dd_model.make_policy, 'dd', log=lambda _: None),
        '--run_path': lambda: evaluate.evaluate(
            dd_eval_config.get_config(), file,
            os.path.join(tmp.full_path, 'out'), None, 'dd',
            log=lambda _: None),
    }
    for option, call in cases.items():
      with self.subTest(option):
        with self.assertRaisesRegex(
            ValueError, rf'^{option.strip()}=\S*/README\.md is a file, not '
            r'a run directory: pass the directory itself \('):
          call()
    self.assertEqual(sorted(os.listdir(tmp.full_path)), ['README.md'])


if __name__ == '__main__':
  absltest.main()
