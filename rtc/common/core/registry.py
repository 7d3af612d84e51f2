"""Policy families by kind: the one place that names them.

A family is a module (or any object) that declares what is its own:

* `make_policy(model options, obs_dim, action_dim)` returning a
  rtc.common.core.policy.ChunkPolicy (required);
* `LABEL`: how reports name it (default: the kind);
* `SAMPLING_OPTIONS`: model options that only change how a chunk is
  sampled, so an evaluation may override them for a trained run with
  `--config.<option>` (default: none);
* `EVAL_RULES`: validate.Rule of each numeric sampling option, checked
  with the evaluation's other options (default: none);
* `QUICKSTART`: the quickstart's sizes and stage-time estimates, a dict
  with `model` (model options of the quickstart), `test_model` (of its
  test preset), `train_seconds` and `eval_seconds` (one level, 128
  episodes per point, 2-core CPU);
* `get_train_config(preset='')`, `get_eval_config()`: its training and
  evaluation configurations (default: `get_config` of configs/<kind>.py
  and configs/<kind>_eval.py, as the built-in families have).

Its kind (a lower-case name) is the run's `kind` in config.json and the
`logs-<kind>` directory. The binaries (rtc.common.cli.binaries), evaluation
(rtc.common.bc.evaluate) and the quickstart look families up here instead of
importing them; the built-in ones load on first use, and
`register(kind, module)` adds another (a new family's package, or a
test's toy family):

  registry.register('toy', toy_module)
  policy = registry.get('toy').make_policy(config.model, obs_dim, action_dim)
"""

import importlib
import re
import types
from typing import Callable

# kind -> its family module, in the quickstart's order.
BUILTIN = {
    'flow': 'rtc.flow.family',
    'dd': 'rtc.dd.family',
}
BUILTIN_KINDS = tuple(BUILTIN)
_KIND = re.compile(r'[a-z][a-z0-9_]*')

_modules: dict[str, types.ModuleType] = {}
_labels: dict[str, str] = {}
# The quickstart's sizes and estimates of a family that declares none.
DEFAULT_QUICKSTART = {'model': {}, 'test_model': {}, 'train_seconds': 70,
                      'eval_seconds': 200}


def register(kind: str, module, label: str = '') -> None:
  """Adds family `module` (with `make_policy`) under `kind`."""
  if not isinstance(kind, str) or not _KIND.fullmatch(kind):
    raise ValueError(f'A policy kind is a lower-case name ([a-z][a-z0-9_]*), '
                     f'got {kind!r}.')
  if kind in kinds():
    raise ValueError(f'Policy kind {kind!r} is already registered; pick '
                     'another name or unregister it first.')
  if not callable(getattr(module, 'make_policy', None)):
    raise ValueError(f'Policy family {kind!r} needs a make_policy(model, '
                     'obs_dim, action_dim) function.')
  _modules[kind] = module
  if label:
    _labels[kind] = label


def unregister(kind: str) -> None:
  """Removes a family added with `register` (built-in ones stay)."""
  if kind in BUILTIN:
    raise ValueError(f'{kind!r} is a built-in policy kind.')
  _modules.pop(kind, None)
  _labels.pop(kind, None)


def kinds() -> tuple[str, ...]:
  """Every registered kind, the built-in ones first."""
  return BUILTIN_KINDS + tuple(k for k in _modules if k not in BUILTIN)


def get(kind: str):
  """The family module of `kind`."""
  if kind not in _modules:
    if kind not in BUILTIN:
      raise ValueError(f'Unknown policy kind {kind!r}; registered: '
                       f'{", ".join(kinds())}.')
    _modules[kind] = importlib.import_module(BUILTIN[kind])
  return _modules[kind]


def make_policy(kind: str) -> Callable:
  """`kind`'s make_policy(model options, obs_dim, action_dim)."""
  return get(kind).make_policy


def label(kind: str) -> str:
  """How reports name `kind` (e.g. 'discrete diffusion')."""
  return _labels.get(kind) or getattr(get(kind), 'LABEL', kind)


def sampling_options(kind: str) -> tuple[str, ...]:
  """Model options of `kind` that an evaluation may override."""
  return tuple(getattr(get(kind), 'SAMPLING_OPTIONS', ()))


def eval_rules(kind: str) -> dict:
  """validate.Rule of each of `kind`'s numeric sampling options."""
  return dict(getattr(get(kind), 'EVAL_RULES', {}))


def quickstart(kind: str) -> dict:
  """`kind`'s quickstart sizes and stage-time estimates (QUICKSTART)."""
  out = dict(DEFAULT_QUICKSTART)
  out.update(getattr(get(kind), 'QUICKSTART', {}))
  return out


def get_config(kind: str, preset: str = '', evaluation: bool = False):
  """`kind`'s training (or evaluation) configuration, of `preset`."""
  family = get(kind)
  make = getattr(family,
                 'get_eval_config' if evaluation else 'get_train_config', None)
  if make is None:
    module = importlib.import_module(
        f'configs.{kind}_eval' if evaluation else f'configs.{kind}')
    make = module.get_config
  return make(preset) if preset else make()
