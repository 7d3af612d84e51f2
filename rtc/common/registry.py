"""Policy families by kind: the one place that names them.

A family is a module (or any object) with
`make_policy(model options, obs_dim, action_dim)` returning a
rtc.common.policy.ChunkPolicy; its kind (a lower-case name) is the run's
`kind` in config.json, the `logs-<kind>` directory, and, for its binaries,
configs/<kind>.py and configs/<kind>_eval.py. The binaries
(rtc.common.binaries), evaluation (rtc.common.evaluate) and the quickstart
look families up here instead of importing them.

The built-in families load on first use; `register(kind, module)` adds
another (a new family's package, or a test's toy family):

  registry.register('toy', toy_module, label='toy regression')
  policy = registry.get('toy').make_policy(config.model, obs_dim, action_dim)
"""

import importlib
import re
import types
from typing import Callable

# kind -> (module path, label for reports), in the quickstart's order.
BUILTIN = {
    'flow': ('rtc.flow.model', 'flow'),
    'dd': ('rtc.dd.model', 'discrete diffusion'),
}
BUILTIN_KINDS = tuple(BUILTIN)
_KIND = re.compile(r'[a-z][a-z0-9_]*')

_modules: dict[str, types.ModuleType] = {}
_labels: dict[str, str] = {kind: label for kind, (_, label) in
                           BUILTIN.items()}


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
  _labels[kind] = label or kind


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
    _modules[kind] = importlib.import_module(BUILTIN[kind][0])
  return _modules[kind]


def make_policy(kind: str) -> Callable:
  """`kind`'s make_policy(model options, obs_dim, action_dim)."""
  return get(kind).make_policy


def label(kind: str) -> str:
  """How reports name `kind` (e.g. 'discrete diffusion')."""
  get(kind)
  return _labels[kind]
