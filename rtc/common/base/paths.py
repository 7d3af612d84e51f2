"""User-given paths under `bazel run`, and where the repository lies.

`bazel run` starts a binary inside its runfiles tree, not in the user's
directory. Paths a user types (config files, run and output directories) are
resolved against `BUILD_WORKING_DIRECTORY`, which `bazel run` sets to the
directory the command was typed in; outside Bazel, against the current
directory. So `bazel run //rtc/dd:train -- --config=configs/dd.py` works from
the repository root and writes its outputs there, never under bazel-out.
"""

import os
import tempfile


def user_dir() -> str:
  return os.environ.get('BUILD_WORKING_DIRECTORY') or os.getcwd()


def resolve(path: str) -> str:
  """An absolute path for `path` as the user meant it ('' stays '')."""
  if not path:
    return path
  path = os.path.expanduser(path)
  if os.path.isabs(path):
    return path
  return os.path.normpath(os.path.join(user_dir(), path))


def shown(path: str) -> str:
  """`path` as a user reads it: relative to the directory `bazel run` ran
  in when it lies below it (docs/latency_cpu.csv), else absolute."""
  rel = os.path.relpath(os.path.abspath(path), user_dir())
  return os.path.abspath(path) if rel.startswith('..') else rel


def repo_root() -> str:
  """The source checkout (runfiles are symlinks back into it)."""
  here = os.path.realpath(__file__)  # <root>/rtc/common/base/paths.py
  for _ in range(4):
    here = os.path.dirname(here)
  return here


def shared_worlds_dir() -> str | None:
  """`../shared/worlds` beside the checkout (the paper's 12 levels), if any."""
  path = os.path.join(os.path.dirname(repo_root()), 'shared', 'worlds')
  return path if os.path.isdir(path) else None


def resolve_config_file(path: str) -> str:
  """Config files: the user's directory first, then the repository."""
  p = resolve(path)
  if os.path.exists(p) or os.path.isabs(path):
    return p
  alt = os.path.join(repo_root(), path)
  return alt if os.path.exists(alt) else p


def resolve_shipped_dir(path: str) -> str:
  """A folder the repository ships (e.g. `worlds`), given relative: the
  user's directory first, then the repository's ('' stays '')."""
  return resolve_config_file(path) if path else path


def check_not_file(path: str, option: str, example: str) -> None:
  """Raises ValueError (one line) when `path`, given as `option`, is a file:
  a run directory was expected (`example`: what to pass instead)."""
  if os.path.isfile(path):
    raise ValueError(f'{option}={path} is a file, not a run directory: pass '
                     f'the directory itself ({option}={example}).')


def check_writable_dir(path: str, option: str) -> None:
  """Raises ValueError (one line naming `option`) unless directory `path`
  exists or can be made, and a file can be written in it. Directories made
  for the probe are removed again."""
  made = []
  parent = os.path.abspath(path)
  while not os.path.exists(parent):
    made.append(parent)
    parent = os.path.dirname(parent)
  fix = f'pass {option} a directory you can write to'
  if not os.path.isdir(parent):
    raise ValueError(f'{option}={path}: {parent} is a file, not a directory; '
                     f'{fix}.')
  try:
    os.makedirs(path, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=path, prefix='.rtc-write-probe-')
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise ValueError(f'{option}={path} cannot be written ({e.strerror or e}); '
                     f'{fix}.') from None
  finally:
    for d in made:  # Deepest first.
      try:
        os.rmdir(d)
      except OSError:
        pass
