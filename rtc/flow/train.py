r"""Trains flow-matching policies by behaviour cloning, one per level.

  bazel run //rtc/flow:train -- --config=configs/flow.py \
      --config.run_path=logs-expert/<run>

See configs/flow.py and configs/common.py for every option.
"""

from rtc.common import binaries
from rtc.common import cli
from rtc.flow import model as flow_model

main = binaries.train_main('flow', flow_model.make_policy)

if __name__ == '__main__':
  cli.run(main)
