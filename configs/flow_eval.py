"""Evaluation sweep of flow policies (DESIGN §9).

  bazel run //rtc/flow:eval -- --run_path=logs-flow/<run> \
      --output_dir=eval_flow_output
"""

from configs import common


def get_config():
  return common.sweep(num_evals=2048, max_guidance_weight=5.0,
                      model_config=common.model())
