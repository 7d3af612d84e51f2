"""Flow-matching behaviour cloning (DESIGN §4, §8).

  bazel run //rtc/flow:train -- --config=configs/flow.py \
      --config.run_path=logs-expert/<run>
"""

from configs import common


def get_config():
  return common.bc_train('logs-flow', common.model())
