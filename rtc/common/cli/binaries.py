"""The `train` and `eval` binaries of every policy kind, defined once.

`rtc/<kind>/train.py` and `rtc/<kind>/eval.py` only name their policy
kind, which rtc.common.core.registry maps to its family:

  BINARY = binaries.train_binary('dd')
  if __name__ == '__main__':
    cli.run(BINARY)

Flags: train takes `--config` (default configs/<kind>.py) with
`--config.<option>` overrides; eval takes `--run_path`, `--output_dir` and
`--config` (default configs/<kind>_eval.py). Before any work every numeric
option is checked (rtc.common.base.validate), the model options by the policy's
config class, and the output directory by writing a probe file in it.

Train with an empty `--config.run_path` uses the only expert run with data
in the user's directory (logs-expert/<run> or the quickstart's), and says
so; with none or several it stops with a line saying what to do.
"""

import os

from absl import flags

from rtc.common.base import paths
from rtc.common.base import validate
from rtc.common.bc import evaluate
from rtc.common.bc import train
from rtc.common.cli import cli
from rtc.common.core import registry


def train_binary(kind: str, make_policy=None, log=print) -> cli.Binary:
  """`kind`'s train binary; `make_policy` defaults to the registry's."""
  make_policy = make_policy or registry.make_policy(kind)

  def check(config, flag_values):
    del flag_values
    validate.check_model(config.model, make_policy)
    if not config.run_path:
      # runs imports Kinetix, which starts JAX's backend: only after
      # distributed.initialize could run (rtc.common.bc.distributed).
      from rtc.common.bc import runs  # pylint: disable=g-import-not-at-top
      run_path = runs.default_expert_run(paths.user_dir())
      config.run_path = run_path
      log(f'[{kind} train] --config.run_path not given: using {run_path}, '
          'the only expert run with data here.')
    if config.load_dir and not os.path.isdir(paths.resolve(config.load_dir)):
      raise ValueError(
          f'--config.load_dir={config.load_dir} is not a directory: pass an '
          f'epoch directory of an earlier run, e.g. logs-{kind}/<run>/<epoch>'
          ', or leave it empty.')
    paths.check_writable_dir(paths.resolve(config.logdir), '--config.logdir')

  def work(config, flag_values):
    del flag_values
    train.train_and_evaluate(config, make_policy, kind, log=log)

  return cli.Binary(
      config_file=f'{kind}.py',
      help='Training configuration (an ml_collections config file).',
      table=validate.BC_TRAIN, work=work, check=check)


def eval_binary(kind: str, make_policy=None, log=print) -> cli.Binary:
  """`kind`'s eval binary; `make_policy` defaults to the registry's."""
  make_policy = make_policy or registry.make_policy(kind)

  def extra_flags(flag_values):
    flags.DEFINE_string('run_path', '',
                        f'Training run directory (logs-{kind}/<run>).',
                        flag_values=flag_values)
    flags.DEFINE_string('output_dir', f'eval_{kind}_output',
                        'Where results.csv goes.', flag_values=flag_values)

  def check(config, flag_values):
    validate.check_model(config.model, make_policy)
    paths.check_writable_dir(paths.resolve(flag_values.output_dir),
                             '--output_dir')

  def work(config, flag_values):
    evaluate.evaluate(config, flag_values.run_path, flag_values.output_dir,
                      make_policy, kind, log=log)

  return cli.Binary(
      config_file=f'{kind}_eval.py',
      help='Evaluation configuration (an ml_collections config file).',
      table={**validate.SWEEP, **registry.eval_rules(kind)}, work=work,
      check=check, extra_flags=extra_flags)
