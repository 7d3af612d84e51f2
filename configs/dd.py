"""Discrete-diffusion behaviour cloning (DESIGN §5, §8).

  bazel run //rtc/dd:train -- --config=configs/dd.py \
      --config.run_path=logs-expert/<run>

Training-time RTC: --config.model.simulated_delay=<D>.
"""

from configs import common


def get_config():
  return common.bc_train(
      'logs-dd', common.model(num_bins=256, bin_embedding_dim=32,
                              expected_value_output=False))
