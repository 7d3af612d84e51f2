"""The discrete-diffusion family as rtc.common.core.registry sees it (kind 'dd').

What the family owns beyond its policies (rtc.dd.model selects the variant):
its report label, the sampling options an evaluation may override, and its
sizes and stage-time estimates in the quickstart. Its training and
evaluation configurations are configs/dd.py and configs/dd_eval.py.
"""

from rtc.dd import model

make_policy = model.make_policy
LABEL = 'discrete diffusion'
# Model options that only change how a chunk is sampled or decoded, so an
# evaluation may set them for a trained run (`--config.<option>`; None:
# the run's value). docs/dd_variants.md.
SAMPLING_OPTIONS = ('expected_value_output', 'decode', 'early_start',
                    'soft_positions', 'early_stop', 'adaptive_unmasking')
# Numeric sampling options' ranges (rtc.common.base.validate.Rule).
EVAL_RULES = {}
# Sampling options that change what a chunk costs: the values
# //rtc/bench:latency times (rtc.common.bc.cost).
COST_OPTIONS = {'early_start': (True, False), 'early_stop': (True, False),
                'adaptive_unmasking': (True, False)}
# The quickstart's DD tokens (its backbone sizes are configs/quickstart.py's);
# seconds per stage on one level, 128 episodes per point, 2-core CPU, empty
# compilation cache (docs/testing.md).
QUICKSTART = {'model': {'num_bins': 64, 'bin_embedding_dim': 8},
              'test_model': {'num_bins': 16}, 'train_seconds': 95,
              'eval_seconds': 255}
