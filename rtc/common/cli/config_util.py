"""Helpers for ml_collections configs shared by the binaries.

* `default_config`: the --config default, configs/<name> in the checkout.
* `resolve_config_arg`: a --config file typed relative to the user's
  directory or to the repository (rtc.common.base.paths.resolve_config_file).
* `check_overrides`: every `--config.<option>` of a command line names an
  option of its config file; if not, one line names the option, the closest
  known names and the config files that list them (ml_collections would
  raise an AttributeError with three tracebacks).
"""

import difflib
import importlib.util
import os
import re

from rtc.common.base import paths
from rtc.common.core import registry

_OVERRIDE = re.compile(r'^--?(?:no)?config\.([^=]+)')
_CONFIG_ARG = re.compile(r'^--?config(=|$)')
_IMPORT = re.compile(r'^\s*from configs import (\w+)', re.M)
# A config that loops over the built-in policy kinds builds on their files.
_KINDS = re.compile(r'\bregistry\.BUILTIN_KINDS\b')


def default_config(name: str) -> str:
  """Absolute path of configs/<name> in the checkout (for flag defaults)."""
  return os.path.join(paths.repo_root(), 'configs', name)


def display_path(path: str) -> str:
  """`path` relative to the repository if it lies inside it."""
  root = paths.repo_root()
  real = os.path.abspath(path)
  if real.startswith(root + os.sep):
    return os.path.relpath(real, root)
  return path


def config_arg(argv) -> tuple[int, str | None]:
  """(index, value) of the last --config=<file> in argv ((-1, None): none)."""
  found = (-1, None)
  for i, arg in enumerate(argv):
    m = _CONFIG_ARG.match(arg)
    if m:
      if m.group(1):
        found = (i, arg.split('=', 1)[1])
      elif i + 1 < len(argv):
        found = (i, argv[i + 1])
  return found


def resolve_config_arg(argv) -> list[str]:
  """argv with its --config file (before any ':preset') made absolute."""
  argv = list(argv)
  i, value = config_arg(argv)
  if value is None:
    return argv
  file, sep, preset = value.partition(':')
  value = paths.resolve_config_file(file) + sep + preset
  if argv[i].startswith('--config=') or argv[i].startswith('-config='):
    argv[i] = '--config=' + value
  else:
    argv[i + 1] = value
  return argv


def option_files(file: str) -> list[str]:
  """`file` and the configs/*.py files it builds on (`from configs import`,
  or configs/<kind>.py and <kind>_eval.py for a loop over
  `registry.BUILTIN_KINDS`), transitively: together they list every
  option."""
  out, todo = [], [file]
  while todo:
    f = todo.pop(0)
    if f in out or not os.path.exists(f):
      continue
    out.append(f)
    with open(f) as fh:
      text = fh.read()
    names = _IMPORT.findall(text)
    if _KINDS.search(text):
      names += [f'{kind}{suffix}' for kind in registry.BUILTIN_KINDS
                for suffix in ('', '_eval')]
    todo += [default_config(f'{name}.py') for name in sorted(names)]
  return out


def load_config(value: str):
  """The config of a --config value ('<file>[:<preset>]'), loaded as
  ml_collections does; ValueError (one line) if it cannot be."""
  file, sep, preset = value.partition(':')
  if not os.path.isfile(file):
    raise ValueError(f'--config={value}: no such config file; the config '
                     f'files are in {default_config("")} (e.g. dd.py).')
  try:
    spec = importlib.util.spec_from_file_location('rtc_checked_config', file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(*([preset] if sep else []))
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'--config={value} does not load: '
                     f'{type(e).__name__}: {e}') from None


def _unknown_option(config, option: str, file: str) -> str | None:
  """The error line for `--config.<option>`, or None if it exists."""
  node, done = config, []
  for part in option.split('.'):
    if not hasattr(node, 'keys'):
      return (f'--config.{option}: --config.{".".join(done)} is a value, not '
              'a group of options.')
    if part not in node:
      known = sorted(node.keys())
      where = '.'.join(done + [''])
      close = difflib.get_close_matches(part, known, n=3, cutoff=0.6) or (
          difflib.get_close_matches(part, known, n=3, cutoff=0.0))
      stage = default_config(f'{done[0]}.py') if done else ''
      files = option_files(stage if stage in option_files(file) else file)
      return (f'--config.{option} is not an option of '
              f'{display_path(file)}; '
              + 'closest: ' + ', '.join(f'--config.{where}{k}' for k in close)
              + '. Every option is listed in '
              + ', '.join(display_path(f) for f in files) + '.')
    node = node[part]
    done.append(part)
  return None


def check_overrides(argv, default_file: str) -> None:
  """Raises ValueError (one line) for the first `--config.<option>` of argv
  that its config file does not have, or for a config file that does not
  load."""
  _, value = config_arg(argv)
  value = value or default_file
  overrides = [m.group(1) for m in map(_OVERRIDE.match, argv) if m]
  if not overrides and value == default_file:
    return
  config = load_config(value)
  file = value.split(':', 1)[0]
  for option in overrides:
    error = _unknown_option(config, option, file)
    if error:
      raise ValueError(error)
