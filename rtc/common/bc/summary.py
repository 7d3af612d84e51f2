"""TensorBoard scalars through `tensorboard.summary.Writer` (no TensorFlow).

That writer stores scalars as tensor summaries: in TensorBoard's UI they show
as usual; read back with EventAccumulator, `Tensors(tag)` returns them (and
`Scalars(tag)` shows nothing). `read_scalars` does that for tests and tools.
"""

import os

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.summary import Writer
from tensorboard.util import tensor_util


class SummaryWriter:
  """Scalars to `<logdir>` event files; flushes on every `write`."""

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    self.logdir = logdir
    self._writer = Writer(logdir)

  def write(self, step: int, scalars: dict) -> None:
    for tag, value in scalars.items():
      value = float(np.asarray(value))
      self._writer.add_scalar(tag, value, step=int(step))
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class NullWriter:
  """A SummaryWriter that writes nothing (processes other than 0)."""

  def write(self, step: int, scalars: dict) -> None:
    del step, scalars

  def close(self) -> None:
    pass


def read_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
  """{tag: [(step, value), ...]} from the event files in `logdir`."""
  acc = event_accumulator.EventAccumulator(
      logdir, size_guidance={event_accumulator.TENSORS: 0})
  acc.Reload()
  out = {}
  for tag in acc.Tags()['tensors']:
    out[tag] = [(e.step, float(np.asarray(
        tensor_util.make_ndarray(e.tensor_proto))))
                for e in acc.Tensors(tag)]
  return out
