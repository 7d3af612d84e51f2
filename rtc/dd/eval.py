r"""Runs the evaluation sweep of a discrete-diffusion run into results.csv.

  bazel run //rtc/dd:eval -- --run_path=logs-dd/<run> \
      --output_dir=eval_dd_output [--config.step=-1 --config.num_evals=128]

See configs/dd_eval.py and configs/common.py for every option.
"""

from rtc.common.cli import binaries
from rtc.common.cli import cli

BINARY = binaries.eval_binary('dd')

if __name__ == '__main__':
  cli.run(BINARY)
