"""The `train` and `eval` binaries of every policy kind, defined once.

`rtc/<kind>/train.py` and `rtc/<kind>/eval.py` only name their policy:

  main = binaries.train_main('dd', dd_model.make_policy)
  if __name__ == '__main__':
    cli.run(main)

Flags: train takes `--config` (default configs/<kind>.py) with
`--config.<option>` overrides; eval takes `--run_path`, `--output_dir` and
`--config` (default configs/<kind>_eval.py).
"""

from absl import flags
from ml_collections import config_flags

from rtc.common import config_util
from rtc.common import evaluate
from rtc.common import train


def train_main(kind: str, make_policy):
  config = config_flags.DEFINE_config_file(
      'config', config_util.default_config(f'{kind}.py'),
      'Training configuration (an ml_collections config file).',
      lock_config=True)

  def main(argv):
    del argv
    train.train_and_evaluate(config.value, make_policy, kind)

  return main


def eval_main(kind: str, make_policy):
  config = config_flags.DEFINE_config_file(
      'config', config_util.default_config(f'{kind}_eval.py'),
      'Evaluation configuration (an ml_collections config file).',
      lock_config=True)
  run_path = flags.DEFINE_string('run_path', '',
                                 f'Training run directory (logs-{kind}/<run>).')
  output_dir = flags.DEFINE_string('output_dir', f'eval_{kind}_output',
                                   'Where results.csv goes.')

  def main(argv):
    del argv
    evaluate.evaluate(config.value, run_path.value, output_dir.value,
                      make_policy, kind)

  return main
