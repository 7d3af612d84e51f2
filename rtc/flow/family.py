"""The flow-matching family as rtc.common.core.registry sees it (kind 'flow').

What the family owns beyond its policy (rtc.flow.model): its report label,
and its sizes and stage-time estimates in the quickstart. Its training and
evaluation configurations are configs/flow.py and configs/flow_eval.py.
"""

from rtc.flow import model

make_policy = model.make_policy
LABEL = 'flow'
# Flow has no sampling option beyond the evaluation's own.
SAMPLING_OPTIONS = ()
# The quickstart's backbone sizes are configs/quickstart.py's; seconds per
# stage on one level, 128 episodes per point, 2-core CPU, empty compilation
# cache (docs/testing.md).
QUICKSTART = {'model': {}, 'test_model': {}, 'train_seconds': 70,
              'eval_seconds': 200}
