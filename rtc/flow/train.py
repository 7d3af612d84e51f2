r"""Trains flow-matching policies by behaviour cloning, one per level.

  bazel run //rtc/flow:train -- --config=configs/flow.py \
      --config.run_path=logs-expert/<run>

See configs/flow.py and configs/common.py for every option.
"""

from ml_collections import config_flags

from rtc.common import cli
from rtc.common import config_util
from rtc.common import train
from rtc.flow import model as flow_model

_CONFIG = config_flags.DEFINE_config_file(
    'config', config_util.default_config('flow.py'),
    'Training configuration (an ml_collections config file).',
    lock_config=True)


def main(argv):
  del argv
  train.train_and_evaluate(_CONFIG.value, flow_model.make_policy, 'flow')


if __name__ == '__main__':
  cli.run(main)
