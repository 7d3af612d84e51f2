"""Discrete-diffusion behaviour cloning (SPEC §6, §7).

  bazel run //rtc/dd:train -- --config=configs/dd.py \
      --config.run_path=logs-expert/<run>

Training-time RTC: --config.model.simulated_delay=<D>.
"""

from configs import common


def get_config():
  return common.bc_train(
      'logs-dd', common.model(num_bins=256, bin_embedding_dim=32,
                              expected_value_output=False))
