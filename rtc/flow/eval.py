r"""Runs the evaluation sweep of a flow-matching run into results.csv.

  bazel run //rtc/flow:eval -- --run_path=logs-flow/<run> \
      --output_dir=eval_flow_output [--config.step=-1 --config.num_evals=2048]

Works on directories written by the earlier Flax implementation too. See
configs/flow_eval.py and configs/common.py for every option.
"""

from absl import flags
from ml_collections import config_flags

from rtc.common import cli
from rtc.common import config_util
from rtc.common import evaluate
from rtc.flow import model as flow_model

_CONFIG = config_flags.DEFINE_config_file(
    'config', config_util.default_config('flow_eval.py'),
    'Evaluation configuration (an ml_collections config file).',
    lock_config=True)
_RUN_PATH = flags.DEFINE_string('run_path', '',
                                'Flow run directory (logs-flow/<run>).')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'eval_flow_output',
                                  'Where results.csv goes.')


def main(argv):
  del argv
  evaluate.evaluate(_CONFIG.value, _RUN_PATH.value, _OUTPUT_DIR.value,
                    flow_model.make_policy, 'flow')


if __name__ == '__main__':
  cli.run(main)
