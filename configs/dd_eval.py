"""Evaluation sweep of discrete-diffusion policies (DESIGN §5, §9).

  bazel run //rtc/dd:eval -- --run_path=logs-dd/<run> \
      --output_dir=eval_dd_output

`realtime.max_guidance_weight` is the DD guidance strength g (the tilt
exp(-g * w * (centre - y)^2 / 2) on p_theta(x_0)); its default comes from the
sweep recorded in docs/dd_variants.md, "Choosing g".
"""

from ml_collections import config_dict

from configs import common
from configs import dd

# Chosen by measurement: see docs/dd_variants.md, "Choosing g".
DEFAULT_GUIDANCE = 3.0


def get_config():
  c = common.sweep(
      num_evals=128, max_guidance_weight=DEFAULT_GUIDANCE,
      model_config=dd.model('seed'))
  # How the last denoising step becomes actions: 'sample' (the sampled bins'
  # centres), 'expected_value' (the expected centre under p_theta) or 'mode'
  # (the most likely bin's centre); None: as the run was trained (its
  # model.decode; runs from before it: their expected_value_output).
  c.decode = config_dict.placeholder(str)
  # model.variant 'masked' or 'token_levels' only (rtc.dd.model): start
  # sampling late when a prefix is committed.
  c.early_start = config_dict.placeholder(bool)
  # model.variant 'masked' or 'token_levels' only: realtime's rule for
  # 0 < w < 1 ('tilt' or 'given').
  c.soft_positions = config_dict.placeholder(str)
  # model.variant 'masked' or 'discrete_rtc' (docs/discrete_rtc.md):
  # realtime stops decoding once positions < d + s are unmasked.
  c.early_stop = config_dict.placeholder(bool)
  # model.variant = 'discrete_rtc' only: N (H - d) / H steps for d committed
  # positions (masked DD's rule for this is early_start).
  c.adaptive_unmasking = config_dict.placeholder(bool)
  return c
