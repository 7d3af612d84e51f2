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
diffusion"): model.corruption = 'mask', model.unmask_order = 'random' |
'confidence', model.early_start (fewer steps when a prefix is committed).
'token_levels' is the default's options with per-token corruption levels
(rtc.dd.token_levels): model.token_levels = 'independent' and
model.token_level_share, the share of examples trained with a level per
position. Runs without model.corruption / model.token_levels read as
'uniform' / 'shared'.

Model options of rtc.dd.ordinal, recorded in the run's config.json:
* model.target_sigma: HL-Gauss target width in bin widths (0 = one-hot).
* model.centre_features: bin-centre sin-cos features in the bin embedding.
* model.ordinal_head: size of the ordinal output basis (0 = off, else >= 2).
* model.decode: 'sample' | 'expected_value' | 'mode', how the last
  denoising step becomes actions (an evaluation may override it).
"""

from configs import common

# Chosen by measurement (README.md, "Why DD learned slowly").
ORDINAL = dict(target_sigma=1.0, centre_features=True, ordinal_head=8,
               decode='expected_value')
MASKED = dict(corruption='mask', unmask_order='random', early_start=True)
TOKEN_LEVELS = dict(corruption='uniform', token_levels='independent',
                    token_level_share=0.5)
SEED = dict(target_sigma=0.0, centre_features=False, ordinal_head=0,
            decode='sample')


def get_config(preset: str = ''):
  if preset not in ('', 'seed', 'masked', 'token_levels'):
    raise ValueError(f"configs/dd.py: unknown preset {preset!r}; use '' "
                     "(the default), 'seed', 'masked' or 'token_levels'.")
  options = SEED if preset == 'seed' else ORDINAL
  if preset == 'masked':
    options = dict(options, **MASKED)
  if preset == 'token_levels':
    options = dict(options, **TOKEN_LEVELS)
  return common.bc_train(
      'logs-dd', common.model(num_bins=256, bin_embedding_dim=32, **options))
