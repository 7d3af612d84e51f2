r"""The CPU benchmark: the quickstart's whole pipeline on the CPU suite.

  bazel run //rtc:benchmark [-- --output_dir=benchmark_output]

It is `//rtc:quickstart` with `--config=configs/quickstart.py:suite`: the
levels of configs/quickstart.py's SUITE (chosen by `bazel run
//rtc/bench:level_survey`, docs/benchmarks.md), trained together
(vmapped over levels), 256 episodes per point. Outputs (rtc.report):
results.csv (one row per level, method, delay and policy),
mean_solve_rate_vs_delay.png, per_level_solve_rate_vs_delay.png and
report.md. Every stage resumes; `--config.<stage>.<option>` overrides any
option as in the quickstart.

`--config.replicates=R` (default 3) repeats the experts, data, training and
evaluation R times with seeds derived from `--config.seed`; the report
gives 95% intervals over replicates and paired verdicts (docs/benchmark.md).
A re-run with a larger R runs only the new replicates.
"""

import dataclasses

from rtc.common.cli import cli
from rtc import quickstart


NAME = 'benchmark'  # Progress lines' tag and the run directories' name.


def run(config, log=print) -> str:
  return quickstart.run(config, NAME, log)


BINARY = dataclasses.replace(
    quickstart.BINARY, config_file='quickstart.py:suite',
    help='Benchmark configuration (configs/quickstart.py:suite by default).',
    work=lambda config, flag_values: run(config))

if __name__ == '__main__':
  cli.run(BINARY)
