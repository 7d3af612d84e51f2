r"""Trains discrete-diffusion policies by behaviour cloning, one per level.

  bazel run //rtc/dd:train -- --config=configs/dd.py \
      --config.run_path=logs-expert/<run>

Without --config.run_path it uses the only expert run with data in
logs-expert/ or quickstart_output/logs-expert/ (and says so).
See configs/dd.py and configs/common.py for every option.
"""

from rtc.common.cli import binaries
from rtc.common.cli import cli

BINARY = binaries.train_binary('dd')

if __name__ == '__main__':
  cli.run(BINARY)
