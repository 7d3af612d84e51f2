r"""Peak memory of loading and batching one paper-sized level of data.

  bazel run //rtc/bench:data [-- --steps=7813 --envs=128 --dir=/tmp]

Writes a synthetic level file in the DESIGN §10 layout (by default 7813 steps x
128 envs = 1,000,064 transitions, 679 float32 observations: 2.7 GB, written
in slices so the writer never holds it), then loads it with
rtc.common.env.data.load_level_dataset and draws `--batches` shuffled batches of
512 through MultiLevelBatcher, and prints the process's memory from
/proc/self/status at each point: anonymous memory (RssAnon: what the
process owns), file-backed pages (RssFile: the memory-mapped observations
that were touched; page cache the kernel can drop) and the peak resident
size (VmHWM). The file is deleted at the end unless --keep.
"""

import os
import tempfile
import time
import zipfile

from absl import flags
import numpy as np

from rtc.bench import timing
from rtc.common.base import validate
from rtc.common.cli import cli
from rtc.common.env import data

_STEPS = flags.DEFINE_integer('steps', 7813, 'Steps T per environment.')
_ENVS = flags.DEFINE_integer('envs', 128, 'Environments E.')
_OBS_DIM = flags.DEFINE_integer('obs_dim', 679, 'Observation size.')
_BATCHES = flags.DEFINE_integer('batches', 200, 'Batches of 512 to draw.')
_DIR = flags.DEFINE_string('dir', '', 'Where to write the file (default: '
                           'the system temporary directory).')
_KEEP = flags.DEFINE_bool('keep', False, 'Keep the file.')

ACTION_DIM = 6
SLICE = 256  # Steps written at a time.


def memory() -> dict:
  """{'RssAnon', 'RssFile', 'VmHWM'} in MiB from /proc/self/status."""
  out = {}
  with open('/proc/self/status') as f:
    for line in f:
      key, _, value = line.partition(':')
      if key in ('RssAnon', 'RssFile', 'VmHWM'):
        out[key] = int(value.split()[0]) / 1024
  return out


def _write_member(zf, name, shape, dtype, fill):
  """Streams an .npy member: fill(start, stop) gives rows [start, stop)."""
  with zf.open(name + '.npy', 'w', force_zip64=True) as f:
    header = {'descr': np.lib.format.dtype_to_descr(np.dtype(dtype)),
              'fortran_order': False, 'shape': shape}
    np.lib.format.write_array_header_2_0(f, header)
    for start in range(0, shape[0], SLICE):
      stop = min(start + SLICE, shape[0])
      f.write(np.ascontiguousarray(fill(start, stop), dtype).tobytes())


def write_level(path, steps, envs, obs_dim, seed=0):
  rng = np.random.default_rng(seed)
  done = rng.random((steps, envs)) < 1 / 40  # Episodes of ~40 steps.
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
    _write_member(zf, 'obs', (steps, envs, obs_dim), np.float32,
                  lambda a, b: rng.standard_normal((b - a, envs, obs_dim),
                                                   np.float32))
    _write_member(zf, 'action', (steps, envs, ACTION_DIM), np.float32,
                  lambda a, b: rng.uniform(-1, 1, (b - a, envs, ACTION_DIM)))
    _write_member(zf, 'done', (steps, envs), np.bool_, lambda a, b: done[a:b])


def main(argv):
  del argv
  validate.check_flags({'steps': validate.COUNT, 'envs': validate.COUNT,
                        'obs_dim': validate.COUNT,
                        'batches': validate.COUNT})
  rows = [['start'] + _fmt(memory())]
  directory = _DIR.value or tempfile.gettempdir()
  fd, path = tempfile.mkstemp(suffix='.npz', dir=directory)
  os.close(fd)
  try:
    t0 = time.perf_counter()
    write_level(path, _STEPS.value, _ENVS.value, _OBS_DIM.value)
    size = os.path.getsize(path) / 2**30
    print(f'wrote {path}: {_STEPS.value * _ENVS.value:,} transitions, '
          f'{size:.2f} GiB in {time.perf_counter() - t0:.1f}s', flush=True)
    rows.append(['after writing'] + _fmt(memory()))
    t0 = time.perf_counter()
    dataset = data.load_level_dataset(path, chunk_size=8)
    rows.append(['after load_level_dataset'] + _fmt(memory()))
    batcher = data.MultiLevelBatcher([dataset], batch_size=512, seed=0)
    indices = batcher.epoch_indices()
    rows.append(['after epoch_indices'] + _fmt(memory()))
    for i in range(min(_BATCHES.value, indices.shape[0])):
      obs, act = batcher.batch(indices[i])
    del obs, act
    seconds = time.perf_counter() - t0
    rows.append([f'after {_BATCHES.value} batches of 512'] + _fmt(memory()))
    print(timing.table(rows, ['point', 'RssAnon (MiB)', 'RssFile (MiB)',
                              'VmHWM peak (MiB)']))
    obs_gib = _STEPS.value * _ENVS.value * _OBS_DIM.value * 4 / 2**30
    print(f'observations: {obs_gib:.2f} GiB float32; load + batches took '
          f'{seconds:.1f}s')
  finally:
    if not _KEEP.value:
      os.remove(path)


def _fmt(m):
  return [f'{m.get(k, float("nan")):.0f}' for k in
          ('RssAnon', 'RssFile', 'VmHWM')]


if __name__ == '__main__':
  cli.run(main)
