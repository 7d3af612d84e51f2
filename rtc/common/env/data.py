"""Behaviour-cloning datasets (DESIGN §8, §10).

A level's data is `data/<level_name>.npz` with arrays of leading axes
[steps T, envs E]: `obs` [T,E,O] float32 (plain observation, no history),
`action` [T,E,A] float32, `done` [T,E] bool (the step that ended an episode),
`solved`, `return_`, `length` [T,E]. Files written by the earlier
implementation have the same layout.

A training example is an index t into the env-major flattened stream (env 0's
T steps, then env 1's, ...): the observation at t and the H actions t..t+H-1.
Actions after the first `done` at or after t belong to a later episode and are
replaced by zeros; the end of each environment's stream counts as an episode
end, so a window never runs into another environment's data.

Memory: `np.savez` files are stored uncompressed, so the observation array is
memory-mapped straight out of the .npz and only the rows of each batch are
read. Nothing holds a second float32 copy of the observations. Compressed
files (`np.savez_compressed`) are read into memory once.

Several processes (rtc.common.bc.distributed): each loads only the levels its
devices hold (`load_level_dataset`); of the others it reads just the array
headers (`peek_level`), since every process draws the same shuffles for all
levels (`MultiLevelBatcher`) and builds only its own rows of each batch.
"""

import dataclasses
import os
import queue
import threading
import zipfile

import numpy as np

KEYS = ('obs', 'action', 'done', 'solved', 'return_', 'length')
REQUIRED_KEYS = ('obs', 'action', 'done')


def _memmap_npz_member(path: str, zf: zipfile.ZipFile, name: str):
  """A read-only memmap of an uncompressed .npy member of a .npz, or None."""
  info = zf.getinfo(name)
  if info.compress_type != zipfile.ZIP_STORED:
    return None
  with open(path, 'rb') as f:
    f.seek(info.header_offset)
    local = f.read(30)
    if local[:4] != b'PK\x03\x04':
      return None
    name_len = int.from_bytes(local[26:28], 'little')
    extra_len = int.from_bytes(local[28:30], 'little')
    start = info.header_offset + 30 + name_len + extra_len
    f.seek(start)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
      shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
      shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
      return None
    if fortran or dtype.hasobject:
      return None
    offset = f.tell()
  return np.memmap(path, dtype=dtype, mode='r', offset=offset, shape=shape)


def load_npz(path: str, keys=KEYS) -> dict:
  """Reads a level's .npz, memory-mapping uncompressed arrays.

  Raises a one-line error naming the file when it is missing, unreadable or
  lacks the DESIGN §10 arrays.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Dataset {path} not found: generate it with '
        '`bazel run //rtc/expert:generate_data -- --config.run_path=<expert '
        'run>` or point --config.run_path at a run holding data/.')
  try:
    with zipfile.ZipFile(path) as zf:
      names = {n[:-4] for n in zf.namelist() if n.endswith('.npy')}
      missing = [k for k in REQUIRED_KEYS if k not in names]
      if missing:
        raise ValueError(f'Dataset {path} lacks arrays {missing} (has '
                         f'{sorted(names)}); regenerate it.')
      out = {}
      for k in keys:
        if k not in names:
          continue
        arr = _memmap_npz_member(path, zf, k + '.npy')
        if arr is None:
          with zf.open(k + '.npy') as member:
            arr = np.lib.format.read_array(member)
        out[k] = arr
  except (zipfile.BadZipFile, EOFError, OSError) as e:
    raise ValueError(f'Dataset {path} is corrupt ({e}); regenerate it.') \
        from None
  return out


def validate(arrays: dict, path: str) -> None:
  validate_shapes(arrays['obs'].shape, arrays['action'].shape,
                  arrays['done'].shape, path)


def validate_shapes(obs, action, done, path: str) -> None:
  obs, action, done = tuple(obs), tuple(action), tuple(done)
  if len(obs) != 3 or len(action) != 3 or len(done) != 2:
    raise ValueError(
        f'Dataset {path}: expected obs [T,E,O], action [T,E,A], done [T,E]; '
        f'got {obs}, {action}, {done}.')
  if obs[:2] != action[:2] or obs[:2] != done:
    raise ValueError(
        f'Dataset {path}: leading axes differ: obs {obs}, action '
        f'{action}, done {done}.')


def episode_ends(done: np.ndarray) -> np.ndarray:
  """For each env-major flat index t, the flat index of its episode's end.

  `done` is [T, E]. The last step of every environment counts as an end.
  """
  t_len, num_envs = done.shape
  d = np.asarray(done, bool).T.copy()  # [E, T]
  d[:, -1] = True
  idx = np.where(d, np.arange(t_len)[None, :], t_len)
  # Reverse cumulative minimum: next end at or after t.
  nxt = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
  base = (np.arange(num_envs) * t_len)[:, None]
  return (nxt + base).reshape(-1).astype(np.int64)


@dataclasses.dataclass
class LevelDataset:
  """One level's examples: obs rows and zero-padded action chunks."""
  path: str
  obs: np.ndarray  # [T, E, O], possibly a memmap.
  actions: np.ndarray  # [E*T, A] env-major, in memory.
  ends: np.ndarray  # [E*T] flat index of each step's episode end.
  chunk_size: int

  @property
  def num_examples(self) -> int:
    return self.ends.shape[0]

  @property
  def obs_dim(self) -> int:
    return self.obs.shape[-1]

  @property
  def action_dim(self) -> int:
    return self.actions.shape[-1]

  def batch(self, idx: np.ndarray):
    """Examples at env-major flat indices `idx` [B] -> (obs [B,O], act [B,H,A])."""
    t_len = self.obs.shape[0]
    env, step = np.divmod(idx, t_len)
    order = np.argsort(idx)  # Sorted reads are much faster on a memmap.
    obs = np.empty((idx.shape[0], self.obs_dim), np.float32)
    obs[order] = self.obs[step[order], env[order]]
    window = idx[:, None] + np.arange(self.chunk_size)[None, :]
    valid = window <= self.ends[idx][:, None]
    window = np.minimum(window, self.num_examples - 1)
    act = np.where(valid[..., None], self.actions[window], 0.0)
    return obs, act.astype(np.float32)


def load_level_dataset(path: str, chunk_size: int) -> LevelDataset:
  arrays = load_npz(path, keys=REQUIRED_KEYS)
  validate(arrays, path)
  action = np.asarray(arrays['action'], np.float32)
  actions = np.ascontiguousarray(action.transpose(1, 0, 2)).reshape(
      -1, action.shape[-1])
  if not np.all(np.isfinite(actions)):
    raise ValueError(f'Dataset {path} holds non-finite actions; regenerate '
                     'it.')
  return LevelDataset(path, arrays['obs'], actions,
                      episode_ends(np.asarray(arrays['done'])), chunk_size)


@dataclasses.dataclass
class LevelInfo:
  """A level's dataset sizes, read from the file's array headers only."""
  path: str
  num_examples: int
  obs_dim: int
  action_dim: int


def _npy_header(zf: zipfile.ZipFile, name: str):
  with zf.open(name) as f:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
      return np.lib.format.read_array_header_1_0(f)[0]
    return np.lib.format.read_array_header_2_0(f)[0]


def peek_level(path: str) -> LevelInfo:
  """The sizes of a level's dataset without reading its arrays."""
  load_npz(path, keys=())  # Existence and the required arrays, one error.
  try:
    with zipfile.ZipFile(path) as zf:
      obs, action, done = (_npy_header(zf, k + '.npy')
                           for k in REQUIRED_KEYS)
  except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
    raise ValueError(f'Dataset {path} is corrupt ({e}); regenerate it.') \
        from None
  validate_shapes(obs, action, done, path)
  return LevelInfo(path, int(done[0] * done[1]), int(obs[-1]),
                   int(action[-1]))


def data_path(run_path: str, level_name: str) -> str:
  return os.path.join(run_path, 'data', f'{level_name}.npz')


class MultiLevelBatcher:
  """Shuffled epochs over several levels at once: batches [L, B, ...].

  Every epoch visits each example of the largest level once; smaller levels
  draw further permutations to fill the same number of steps.

  `datasets` lists every level: a `LevelDataset` where this process builds
  batches, else its `LevelInfo` (the shuffles of all levels come from one
  random stream, so every process must know every level's size).
  `slot_levels` is the level of each row `batch` returns (default: every
  level once, in order; rtc.common.bc.sharding's `local_slot_levels` in a job).
  """

  def __init__(self, datasets, batch_size: int, seed: int,
               slot_levels=None):
    if not datasets:
      raise ValueError('No datasets given.')
    dims = {(d.obs_dim, d.action_dim) for d in datasets}
    if len(dims) != 1:
      raise ValueError(
          'Datasets differ in observation/action size: ' + ', '.join(
              f'{d.path}: O={d.obs_dim}, A={d.action_dim}' for d in datasets))
    small = [d for d in datasets if d.num_examples < batch_size]
    if small:
      raise ValueError(
          f'Dataset {small[0].path} has {small[0].num_examples} examples, '
          f'fewer than batch_size={batch_size}: lower --config.batch_size.')
    self.datasets = datasets
    self.slot_levels = (list(range(len(datasets))) if slot_levels is None
                        else list(slot_levels))
    unloaded = [datasets[i].path for i in self.slot_levels
                if not isinstance(datasets[i], LevelDataset)]
    if unloaded:
      raise ValueError(f'Batches need {unloaded[0]} loaded, not peeked.')
    self.batch_size = batch_size
    self.steps_per_epoch = max(d.num_examples for d in datasets) // batch_size
    self._rng = np.random.default_rng(seed)

  def state(self) -> dict:
    """The shuffling state (numpy's bit-generator state, a plain dict):
    `restore(state())` makes the next epochs repeat."""
    return self._rng.bit_generator.state

  def restore(self, state: dict) -> None:
    """Continues the shuffles from a `state()` (e.g. a resumed run's)."""
    self._rng.bit_generator.state = state

  def epoch_indices(self) -> np.ndarray:
    """[steps, L, B] example indices for one epoch."""
    need = self.steps_per_epoch * self.batch_size
    per_level = []
    for d in self.datasets:
      reps = -(-need // d.num_examples)
      perm = np.concatenate([self._rng.permutation(d.num_examples)
                             for _ in range(reps)])[:need]
      per_level.append(perm.reshape(self.steps_per_epoch, self.batch_size))
    return np.stack(per_level, axis=1)

  def batch(self, indices: np.ndarray):
    """indices [L, B] -> (obs [S,B,O], actions [S,B,H,A]), S slots."""
    parts = [self.datasets[l].batch(indices[l]) for l in self.slot_levels]
    return (np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]))


def prefetch(batcher, indices, depth=3):
  """Yields batcher.batch(i) for i in indices, prepared in a thread."""
  q = queue.Queue(maxsize=depth)
  stop = threading.Event()

  def work():
    try:
      for idx in indices:
        if stop.is_set():
          return
        q.put(batcher.batch(idx))
      q.put(None)
    except BaseException as e:  # pylint: disable=broad-except
      q.put(e)

  t = threading.Thread(target=work, daemon=True)
  t.start()
  try:
    while True:
      item = q.get()
      if item is None:
        return
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    stop.set()
