"""Checkpoints: atomic per-level parameter pickles (DESIGN §10).

Layout: `<run>/<epoch>/policies/<level_name>.pkl`, each a pickled nested dict
of numpy arrays. rtc writes its Haiku parameters as they are
(`{module_path: {param_name: array}}`).

`load_params(path)` also reads the earlier Flax implementation's pickles
(DESIGN §10) and returns rtc's Haiku parameters (rtc.common.bc.flax_convert).
"""

import os
import pickle
import re
import tempfile
from typing import Callable

import jax
import numpy as np

from rtc.common.bc import flax_convert

def atomic_write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` so that readers see the old or the new file."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-',
                             suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def to_numpy(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def save_params(path: str, params) -> None:
  """Atomically pickles `params` (nested dict of arrays) as numpy arrays."""
  tree = to_numpy(params)
  tree = {k: dict(v) if isinstance(v, dict) else v for k, v in tree.items()}
  atomic_write_bytes(path, pickle.dumps(tree, protocol=4))


def policy_path(run_dir: str, epoch: int, level_name: str) -> str:
  return os.path.join(run_dir, str(epoch), 'policies', f'{level_name}.pkl')


def epoch_dirs(run_dir: str) -> list[int]:
  """Sorted epoch numbers of the `<run>/<epoch>/` directories."""
  if not os.path.isdir(run_dir):
    raise FileNotFoundError(
        f'Run directory {run_dir} does not exist: pass the directory a '
        'training run wrote (e.g. logs-flow/<run_name>).')
  return sorted(int(n) for n in os.listdir(run_dir)
                if n.isdigit() and os.path.isdir(os.path.join(run_dir, n)))


def resolve_epoch(run_dir: str, step: int) -> int:
  """`step` >= 0 is an epoch number; -1 the latest, -2 the one before, ..."""
  epochs = epoch_dirs(run_dir)
  if not epochs:
    raise FileNotFoundError(
        f'Run directory {run_dir} holds no epoch directories (<n>/policies); '
        'train first or pass the right --run_path.')
  if step < 0:
    if -step > len(epochs):
      raise ValueError(f'step={step}, but {run_dir} holds only epochs '
                       f'{epochs}.')
    return epochs[step]
  if step not in epochs:
    raise FileNotFoundError(f'Epoch {step} not found in {run_dir} (has '
                            f'{epochs}).')
  return step


def load_params(path: str) -> dict:
  """Reads an rtc or reference-format checkpoint; returns Haiku params."""
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Checkpoint {path} not found: check --run_path / --config.step, or '
        'train that level first.')
  try:
    with open(path, 'rb') as f:
      tree = pickle.load(f)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'Checkpoint {path} is corrupt or not a pickle '
                     f'({type(e).__name__}: {e}); restore or re-train it.') \
        from None
  if not isinstance(tree, dict):
    raise ValueError(f'Checkpoint {path} holds a {type(tree).__name__}, not '
                     'a dict of parameters.')
  try:
    if flax_convert.is_reference_flow(tree):
      return flax_convert.convert_reference_flow(tree)
    if flax_convert.is_reference_expert(tree):
      return flax_convert.convert_reference_expert(tree)
  except (KeyError, TypeError) as e:
    raise ValueError(f'Checkpoint {path} looks like a reference-format file '
                     f'but lacks {e}; it may be truncated.') from None
  return jax.tree.map(np.asarray, tree)


def check_params(params, expected, path: str) -> None:
  """Raises one clear error if `params` does not match `expected`'s shapes."""
  flat_p = _flatten(params)
  flat_e = _flatten(expected)
  missing = sorted(set(flat_e) - set(flat_p))
  extra = sorted(set(flat_p) - set(flat_e))
  if missing or extra:
    # The networks' root modules name the policy variant (e.g. dd,
    # discrete_rtc).
    roots = lambda flat: ', '.join(sorted({k.split('/')[0] for k in flat}))
    raise ValueError(
        f'Checkpoint {path} does not fit this model (its networks: '
        f'{roots(flat_p)}; the model\'s: {roots(flat_e)}): missing parameters '
        f'{missing[:3]}{"..." if len(missing) > 3 else ""}, unexpected '
        f'{extra[:3]}{"..." if len(extra) > 3 else ""}; check the model '
        'options (--config.model.*) against the run that wrote it.')
  for name in sorted(flat_e):
    if tuple(flat_p[name].shape) != tuple(flat_e[name].shape):
      raise ValueError(
          f'Checkpoint {path}: parameter {name} has shape '
          f'{tuple(flat_p[name].shape)}, but the model expects '
          f'{tuple(flat_e[name].shape)}; check the model options and the '
          'level (observation/action sizes) against the run that wrote it.')


def _flatten(tree) -> dict:
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = '/'.join(str(getattr(p, 'key', p)) for p in path)
    out[re.sub(r'/+', '/', name)] = leaf
  return out


def load_checked(path: str, expected) -> dict:
  params = load_params(path)
  check_params(params, expected, path)
  return jax.tree.map(lambda x, e: np.asarray(x, e.dtype), params, expected)


# -- resume state --------------------------------------------------------------
# A training loop's resume file holds its state as flat lists of leaves
# (rtc.common.bc.train's train_state.pkl, rtc.expert.train's snapshots). Both
# read it back with `read_pickles` and `check_leaves`, so a file from another
# run or an older format stops with one line naming the file, the leaf and
# the fix, instead of failing later inside a compiled step.

_UNREADABLE = (OSError, pickle.UnpicklingError, EOFError, TypeError,
               ValueError, AttributeError, IndexError)


def read_pickles(path: str, count: int, fix: str) -> list:
  """The first `count` pickles of `path` (a file may hold several in a row)."""
  try:
    with open(path, 'rb') as f:
      return [pickle.load(f) for _ in range(count)]
  except _UNREADABLE as e:
    raise ValueError(f'{path} is unreadable ({type(e).__name__}); {fix}.') \
        from None


def check_leaves(leaves, like, path: str, what: str, fix: str,
                 fit: Callable = lambda x, like: x) -> list:
  """`leaves` as numpy arrays, each checked against `like`'s leaf.

  `like`: the leaves (arrays or jax.ShapeDtypeStruct) the state must match
  in number, shape and dtype; `what` names it in the error ('this
  optimiser'); `fit(saved, like)` may first turn an older layout into the
  current one (e.g. drop padding).
  """
  if not isinstance(leaves, (list, tuple)) or len(leaves) != len(like):
    saved = len(leaves) if isinstance(leaves, (list, tuple)) else 'no'
    raise ValueError(f'{path} does not match {what} ({saved} saved '
                     f'arrays, {len(like)} expected); {fix}.')
  out = []
  for i, (x, want) in enumerate(zip(leaves, like)):
    x = fit(np.asarray(x), want)
    if x.shape != tuple(want.shape) or x.dtype != np.dtype(want.dtype):
      raise ValueError(
          f'{path} does not match {what}: array {i} is {x.dtype}'
          f'{list(x.shape)}, expected {np.dtype(want.dtype)}'
          f'{list(want.shape)}; {fix}.')
    out.append(x)
  return out
