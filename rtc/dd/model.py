r"""The discrete-diffusion family (DESIGN §5): the module rtc.common.core.registry
loads for kind 'dd'. `make_policy` picks a leaf module by ONE option,
`model.variant`, from `VARIANTS`:

  'uniform'       rtc.dd.uniform       uniform corruption, the seed's model
                                       (the default);
  'masked'        rtc.dd.masked        masked (absorbing) corruption;
  'token_levels'  rtc.dd.token_levels  uniform corruption, per-token levels;
  'discrete_rtc'  rtc.dd.discrete_rtc  DiscreteRTC's recipe: per-dimension
                                       tokens, no time input, MaskGIT
                                       decoding (its own network).

Every leaf but discrete_rtc builds on rtc.dd.base (network, embeddings, logits,
cross-entropy, the options all variants share, realtime's entry point and
early start). A leaf module defines two names:

* `Config`: a frozen dataclass subclassing rtc.dd.base.ModelConfig whose
  `variant` field defaults to the leaf's name in `VARIANTS`; its other new
  fields are the leaf's options (one comment each), checked in
  `__post_init__` with one ValueError line naming `model.<option>`.
* `Policy`: a subclass of rtc.dd.base.DiscreteDiffusionPolicy (or of
  another leaf's Policy), built as `Policy(config, obs_dim, action_dim)`,
  defining `action`, `_guided` (realtime: how the committed positions are
  held), `training_time_action` and `_corrupt` (the forward process and
  which tokens the loss covers); `_draw_levels` and `extra_tokens` (rows
  after the K bins in the embedding, e.g. a mask token) if not the base's.

A fifth variant is one new file rtc/dd/<name>.py and one line in `VARIANTS`
(plus its BUILD target in :model's deps). Options a leaf's Config does not
have are refused with one line naming `model.variant`; a None option is
unset (the leaf's default).

`upgrade` reads every older config.json form, so old runs and checkpoints
load into the same leaf as before: `model.corruption` ('uniform' | 'mask')
and `model.token_levels` ('shared' | 'independent') become `model.variant`,
and `expected_value_output` (before `model.decode`) becomes `decode`.
"""

import dataclasses

from rtc.dd import discrete_rtc
from rtc.dd import masked
from rtc.dd import token_levels
from rtc.dd import uniform

# model.variant -> leaf module (Config, Policy).
VARIANTS = {
    'uniform': uniform,
    'masked': masked,
    'token_levels': token_levels,
    'discrete_rtc': discrete_rtc,
}

# Older forms of model.variant: (model.corruption, model.token_levels).
OLD_FORMS = {
    ('uniform', 'shared'): 'uniform',
    ('mask', 'shared'): 'masked',
    ('uniform', 'independent'): 'token_levels',
}


def upgrade(model: dict) -> dict:
  """Model options of any older config.json form -> the current form."""
  model = dict(model)
  legacy = model.pop('expected_value_output', None)
  has_decode = 'decode' in _options(VARIANTS.get(model.get('variant'),
                                                 uniform))
  if model.get('decode') is None and has_decode:  # Before model.decode.
    model['decode'] = 'expected_value' if legacy else 'sample'
  corruption = model.pop('corruption', None)
  mode = model.pop('token_levels', None)
  if corruption is None and mode is None:
    return model
  old = (corruption or 'uniform', mode or 'shared')
  variant = OLD_FORMS.get(old)
  if variant is None or model.get('variant') not in (None, variant):
    raise ValueError(
        f'model.variant: model.corruption = {old[0]!r} with '
        f'model.token_levels = {old[1]!r} (older forms of it) '
        + ('is no variant' if variant is None else
           f"contradicts model.variant = {model['variant']!r}")
        + f'; remove them and set model.variant to one of '
        f'{tuple(VARIANTS)}.')
  model['variant'] = variant
  return model


def _options(leaf) -> set[str]:
  return {f.name for f in dataclasses.fields(leaf.Config)}


def make_policy(model, obs_dim: int, action_dim: int):
  """A DD policy from model options (a dict or ConfigDict, any config.json
  form): the leaf `model.variant` names."""
  model = model.to_dict() if hasattr(model, 'to_dict') else dict(model)
  model = {k: v for k, v in upgrade(model).items() if v is not None}
  name = model.setdefault('variant', 'uniform')
  if name not in VARIANTS:
    raise ValueError(f'model.variant must be one of {tuple(VARIANTS)}, got '
                     f'{name!r}.')
  leaf = VARIANTS[name]
  extra = sorted(set(model) - _options(leaf))
  if extra:
    owners = tuple(v for v, m in VARIANTS.items() if extra[0] in _options(m))
    raise ValueError(
        f'model.{extra[0]} is not an option of model.variant = {name!r}'
        + (f' (it is of {owners})' if owners else '')
        + '; remove it or set model.variant.')
  return leaf.Policy(leaf.Config(**model), obs_dim, action_dim)
