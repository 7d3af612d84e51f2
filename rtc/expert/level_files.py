"""A level's generated .npz: written atomically, recognised when complete.

rtc.expert.generate_data writes `<run_path>/data/<level_name>.npz` through
`LevelWriter`: the arrays fill temporary .npy files in a directory named
`.tmp-gen-<level>-*` beside the output, the .npz is written to
`.tmp-<level>-*.npz` and renamed, so a killed job never leaves a partial file
under the real name. A new writer first removes the temporary files a killed
job left for its level.

`incomplete` tells a re-run which levels it can skip: a file is complete when
it holds every field with the shapes and types this configuration writes
(read from the .npy headers and member sizes, without reading the arrays),
and its `generation` record (the settings that determine its contents: seed,
level index, sizes, expert choice) equals this configuration's.
"""

import json
import os
import shutil
import tempfile
import zipfile

import numpy as np

META = 'generation'  # The settings record stored in every .npz.


def meta_record(settings: dict) -> str:
  return json.dumps(settings, sort_keys=True)


def _temp_prefixes(path: str) -> tuple[str, str]:
  base = os.path.basename(path)[:-len('.npz')]
  return f'.tmp-gen-{base}-', f'.tmp-{base}-'


def remove_stale(path: str) -> None:
  """Removes the temporary files a killed job left for `path`."""
  directory = os.path.dirname(path)
  if not os.path.isdir(directory):
    return
  prefixes = _temp_prefixes(path)
  for entry in os.listdir(directory):
    if entry.startswith(prefixes):
      full = os.path.join(directory, entry)
      if os.path.isdir(full):
        shutil.rmtree(full, ignore_errors=True)
      else:
        os.unlink(full)


def incomplete(path: str, specs: dict, meta: str) -> str | None:
  """Why `path` must be (re)generated, or None when it is complete."""
  if not os.path.exists(path):
    return 'missing'
  try:
    with zipfile.ZipFile(path) as zf:
      members = {i.filename[:-4]: i for i in zf.infolist()
                 if i.filename.endswith('.npy')}
      for k, (shape, dtype) in specs.items():
        if k not in members:
          return f'lacks {k}'
        with zf.open(members[k]) as f:
          version = np.lib.format.read_magic(f)
          read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
          got_shape, _, got_dtype = read(f)
          header = f.tell()
        want = (tuple(shape), np.dtype(dtype))
        if (tuple(got_shape), got_dtype) != want:
          return (f'{k} is {got_dtype}{list(got_shape)}, not '
                  f'{want[1]}{list(shape)}')
        if members[k].file_size != header + got_dtype.itemsize * int(
            np.prod(shape)):
          return f'{k} is truncated'
      if META not in members:
        return 'written without a settings record'
      with zf.open(members[META]) as f:
        if str(np.lib.format.read_array(f, allow_pickle=False)) != meta:
          return 'written with other settings'
  except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
    return f'unreadable ({e})'
  return None


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


class LevelWriter:
  """Fills temporary .npy files row by row, then writes the .npz atomically."""

  def __init__(self, path: str, specs: dict, meta: str):
    self.path, self.meta = path, meta
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    remove_stale(path)
    self.tmpdir = tempfile.mkdtemp(dir=directory,
                                   prefix=_temp_prefixes(path)[0])
    self.arrays = {k: np.lib.format.open_memmap(
        os.path.join(self.tmpdir, f'{k}.npy'), mode='w+', dtype=dtype,
        shape=shape) for k, (shape, dtype) in specs.items()}
    self.rows = 0
    self.episodes = 0
    self.sums = {'return': 0.0, 'length': 0.0, 'solved': 0.0}

  def write(self, chunk: dict, n: int) -> None:
    for k, arr in self.arrays.items():
      arr[self.rows:self.rows + n] = chunk[k][:n]
    done = np.asarray(chunk['done'][:n], bool)
    self.episodes += int(done.sum())
    self.sums['return'] += float(np.asarray(chunk['return_'][:n])[done].sum())
    self.sums['length'] += float(np.asarray(chunk['length'][:n])[done].sum())
    self.sums['solved'] += float(np.asarray(chunk['solved'][:n])[done].sum())
    self.rows += n

  def summary(self) -> dict:
    n = max(self.episodes, 1)
    return {'episodes': self.episodes, 'return': self.sums['return'] / n,
            'length': self.sums['length'] / n,
            'solved': self.sums['solved'] / n}

  def finish(self) -> None:
    for arr in self.arrays.values():
      arr.flush()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path),
                               prefix=_temp_prefixes(self.path)[1],
                               suffix='.npz')
    os.close(fd)
    try:
      np.savez(tmp, **self.arrays, **{META: np.array(self.meta)})
      os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it private.
      os.replace(tmp, self.path)
    finally:
      if os.path.exists(tmp):
        os.unlink(tmp)
      self.cleanup()

  def cleanup(self) -> None:
    self.arrays = {}
    shutil.rmtree(self.tmpdir, ignore_errors=True)
