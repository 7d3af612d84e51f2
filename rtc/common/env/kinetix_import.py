"""Imports the parts of kinetix-env that rtc uses, without the rest.

`kinetix.environment` and `kinetix.util` are packages whose `__init__`
imports everything under them: level generation, training utilities,
wandb, and through gymnax's own `__init__` all of gymnax's bundled
environments (with seaborn, matplotlib and scipy.stats). rtc uses the
environment, its state and spaces, and the level loader. A fresh process
that imports those names this way runs 4.2 s instead of 9.2 s, median of 7
rounds (2-core AMD EPYC, quiet, 2026-12-07; `bazel run
//rtc/bench:import_time`, docs/import_time_cpu.txt).

`load()` registers those packages with their `__init__` deferred: the
package's submodules import as usual, and the first attribute read that
the package itself defines runs its `__init__` then, in place. So code
that later uses, say, `gymnax.make` or `wandb.init` in the same process
gets the whole package. The names kinetix reads from gymnax's top level
(EnvParams, EnvState) are set to the very objects gymnax's `__init__` sets.
If the installed versions are laid out differently, the plain imports run.
"""

import importlib
import importlib.util
import sys
import types

# Packages whose __init__ is deferred, parents before children.
DEFERRED = ('gymnax', 'gymnax.environments', 'kinetix', 'kinetix.environment',
            'kinetix.util', 'wandb')


def _defer_init(name: str) -> None:
  """Puts package `name` in sys.modules with its __init__ not yet run."""
  if name in sys.modules:
    return
  spec = importlib.util.find_spec(name)
  if spec is None or spec.submodule_search_locations is None:
    raise ImportError(f'{name} is not an installed package')
  module = importlib.util.module_from_spec(spec)

  def __getattr__(attr):  # pylint: disable=invalid-name
    # Only reached for names the package's own __init__ would define.
    del module.__dict__['__getattr__']
    spec.loader.exec_module(module)
    return getattr(module, attr)

  module.__getattr__ = __getattr__
  sys.modules[name] = module
  parent, _, child = name.rpartition('.')
  if parent:
    setattr(sys.modules[parent], child, module)


def load() -> types.SimpleNamespace:
  """The Kinetix names rtc uses, from their defining modules."""
  if 'kinetix.environment.env' not in sys.modules:
    saved = dict(sys.modules)
    try:
      for name in DEFERRED:
        _defer_init(name)
      environment = importlib.import_module('gymnax.environments.environment')
      gymnax = sys.modules['gymnax']
      if '__getattr__' in gymnax.__dict__:
        gymnax.EnvParams = environment.EnvParams
        gymnax.EnvState = environment.EnvState
      importlib.import_module('kinetix.environment.env')
    except (ImportError, AttributeError):
      # Another layout: forget the partial imports, import as usual.
      for name in set(sys.modules) - set(saved):
        del sys.modules[name]
      sys.modules.update(saved)
  spaces = importlib.import_module('kinetix.environment.spaces')
  env = importlib.import_module('kinetix.environment.env')
  env_state = importlib.import_module('kinetix.environment.env_state')
  saving = importlib.import_module('kinetix.util.saving')
  return types.SimpleNamespace(
      ActionType=spaces.ActionType, ObservationType=spaces.ObservationType,
      make_kinetix_env=env.make_kinetix_env, KinetixEnv=env.KinetixEnv,
      EnvParams=env_state.EnvParams, StaticEnvParams=env_state.StaticEnvParams,
      saving=saving)
