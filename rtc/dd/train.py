r"""Trains discrete-diffusion policies by behaviour cloning, one per level.

  bazel run //rtc/dd:train -- --config=configs/dd.py \
      --config.run_path=logs-expert/<run>

See configs/dd.py and configs/common.py for every option.
"""

from rtc.common import binaries
from rtc.common import cli
from rtc.dd import model as dd_model

main = binaries.train_main('dd', dd_model.make_policy)

if __name__ == '__main__':
  cli.run(main)
