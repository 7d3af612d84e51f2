r"""Runs the evaluation sweep of a flow-matching run into results.csv.

  bazel run //rtc/flow:eval -- --run_path=logs-flow/<run> \
      --output_dir=eval_flow_output [--config.step=-1 --config.num_evals=2048]

Works on directories written by the earlier Flax implementation too.
See configs/flow_eval.py and configs/common.py for every option.
"""

from rtc.common.cli import binaries
from rtc.common.cli import cli

BINARY = binaries.eval_binary('flow')

if __name__ == '__main__':
  cli.run(BINARY)
