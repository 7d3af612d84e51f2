"""Discrete-diffusion behaviour cloning (DESIGN §5, §8).

  bazel run //rtc/dd:train -- --config=configs/dd.py \
      --config.run_path=logs-expert/<run>

Training-time RTC: --config.model.simulated_delay=<D>.

Presets: '' (the default) is the seed's model (K = 256 bins, uniform
corruption) with the ordinal options chosen by measurement
(`bazel run //rtc/bench:dd_learning`, README.md "Why DD learned slowly");
'seed' is the seed's model exactly (one-hot cross-entropy, a free bin
embedding table, no ordinal head, sampled bins), e.g.
--config=configs/dd.py:seed. 'masked' is the default's options with masked
(absorbing) corruption (rtc.dd.masked; README.md "Masked discrete
diffusion"): model.variant = 'masked', model.unmask_order = 'random' |
'confidence', model.early_start (fewer steps when a prefix is committed).
'token_levels' is the default's options with per-token corruption levels
(rtc.dd.token_levels): model.variant = 'token_levels' and
model.token_level_share, the share of examples trained with a level per
position. 'discrete_rtc' is DiscreteRTC's recipe (rtc.dd.discrete_rtc,
docs/discrete_rtc.md): K = 512, MaskGIT decoding, model.early_stop /
model.adaptive_unmasking. model.variant ('uniform' | 'masked' |
'token_levels' | 'discrete_rtc', rtc.dd.model) picks the variant; runs
from before it (model.corruption, model.token_levels) read as before.

Model options of rtc.dd.ordinal, recorded in the run's config.json:
* model.target_sigma: HL-Gauss target width in bin widths (0 = one-hot).
* model.centre_features: bin-centre sin-cos features in the bin embedding.
* model.ordinal_head: size of the ordinal output basis (0 = off, else >= 2).
* model.decode: 'sample' | 'expected_value' | 'mode', how the last
  denoising step becomes actions (an evaluation may override it).
"""

from configs import common
from rtc.dd import base
from rtc.dd import discrete_rtc as drtc
from rtc.dd import masked
from rtc.dd import token_levels

# Chosen by measurement (docs/dd_variants.md, "Why DD learned slowly"); the
# defaults of the config classes are the seed's model.
ORDINAL = dict(target_sigma=1.0, centre_features=True, ordinal_head=8,
               decode='expected_value')


def model(preset: str = ''):
  """The model options of a preset; defaults from the config classes
  (rtc.dd.base.ModelConfig, rtc.dd.masked.MaskedConfig,
  rtc.dd.token_levels.TokenLevelsConfig), which set model.variant."""
  if preset == 'seed':
    return common.options_of(base.ModelConfig)
  if preset == 'masked':
    # Early start off (docs/dd_variants.md, "Masked DD"): one run on
    # m/h0_unicycle lost 0.19 of realtime's solve rate at d = 4; replicated
    # on the six-level suite no loss is detectable, but the interval still
    # allows one of up to 0.26 (docs/benchmark_suite/). Soft positions
    # (0 < w < 1) given with probability w rather than tilted, by
    # measurement (docs/dd_variants.md, "Soft positions"): better on the
    # synthetic continuation and where the tilt collapsed on Kinetix.
    return common.options_of(masked.MaskedConfig, early_start=False,
                             soft_positions='given', **ORDINAL)
  if preset == 'token_levels':
    # Soft positions keep the tilt, by measurement (docs/dd_variants.md,
    # "Soft positions": 'given' lost 0.05 at d = 2 on m/h0_unicycle); early
    # start on, by measurement (docs/dd_variants.md, "Which DD variant":
    # realtime +0.07 / +0.09 at d = 3 / 4 there, with 3 / 2 network calls
    # instead of 5).
    return common.options_of(token_levels.TokenLevelsConfig,
                             soft_positions='tilt', early_start=True,
                             **ORDINAL)
  if preset == 'discrete_rtc':
    return discrete_rtc()
  return common.options_of(base.ModelConfig, **ORDINAL)


def discrete_rtc():
  """DiscreteRTC's recipe (rtc.dd.discrete_rtc, docs/discrete_rtc.md): its
  published values are the config class's defaults (K = 512, L1 weight 0.1,
  choice temperature 0, early stop on)."""
  return common.options_of(drtc.DiscreteRTCConfig)


def get_config(preset: str = ''):
  if preset not in ('', 'seed', 'masked', 'token_levels', 'discrete_rtc'):
    raise ValueError(f"configs/dd.py: unknown preset {preset!r}; use '' "
                     "(the default), 'seed', 'masked', 'token_levels' or "
                     "'discrete_rtc'.")
  return common.bc_train('logs-dd', model(preset))
