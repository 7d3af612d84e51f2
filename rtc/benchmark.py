r"""The CPU benchmark: the quickstart's whole pipeline on the CPU suite.

  bazel run //rtc:benchmark [-- --output_dir=benchmark_output]

It is `//rtc:quickstart` with `--config=configs/quickstart.py:suite`: the
levels of configs/quickstart.py's SUITE (chosen by `bazel run
//rtc/bench:level_survey`, README "CPU benchmark"), trained together
(vmapped over levels), 256 episodes per point. Outputs (rtc.report):
results.csv (one row per level, method, delay and policy),
mean_solve_rate_vs_delay.png, per_level_solve_rate_vs_delay.png and
report.md. Every stage resumes; `--config.<stage>.<option>` overrides any
option as in the quickstart.
"""

import dataclasses

from rtc import quickstart
from rtc.common import cli


class Benchmark(quickstart.Quickstart):
  NAME = 'benchmark'
  RUN_NAME = 'benchmark'


BINARY = dataclasses.replace(
    quickstart.BINARY, config_file='quickstart.py:suite',
    help='Benchmark configuration (configs/quickstart.py:suite by default).',
    work=lambda config, flag_values: Benchmark(config).run())

if __name__ == '__main__':
  cli.run(BINARY)
