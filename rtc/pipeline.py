"""Staged pipelines: markers, branches side by side, time left, resume.

The quickstart, the benchmark and the level survey are plans over this
module (rtc.quickstart, rtc.bench.level_survey). A plan is a sequence of
steps; a step is a `Stage`, or a tuple of branches (each a tuple of Stages)
that run side by side, one thread each (`parallel=False`: one after the
other).

A stage's id is a path relative to the output directory: `expert`,
`replicate_1/flow_train`. When a stage ends, its marker
`<out>/<dir>/stages/<name>.json` records its wall time, its outputs and the
settings it ran with. A re-run skips every finished stage whose recorded
settings equal its settings now. If they differ, a stage with `redo=True`
(e.g. the report) runs again; for any other stage the run stops before
anything runs or is written, with one line naming the setting that differs.
A stage interrupted part way is resumed by its own work (it has no marker).

Before each stage a progress line gives the elapsed time and an estimate of
the time left: the plan's wall time over the stages not yet finished, from
each stage's `seconds` (side-by-side branches count as their longest),
scaled by how long the stages finished in this run took against their
`seconds` (`calibration`): the estimates are for one level on a quiet
2-core CPU, and a run on other levels, sizes or machines learns its own
pace from its first stages.
"""

import dataclasses
import datetime
import json
import os
import threading
import time
from typing import Any, Callable, Optional

from rtc.common.base import progress
from rtc.common.bc import checkpoints


@dataclasses.dataclass(frozen=True)
class Stage:
  """One stage of a plan."""
  id: str  # '<name>' or '<dir>/<name>' (a path under the output directory).
  work: Callable[[], dict]  # Runs the stage; returns its outputs (JSON).
  seconds: float = 0.0  # Expected wall seconds (the time-left estimate).
  settings: Any = None  # JSON: what its outputs depend on.
  redo: bool = False  # Changed settings: run again (True) or refuse.
  option: str = ''  # Prefix naming its settings as options: 'flow.'.


def stages(plan) -> list[Stage]:
  """Every stage of `plan`, in order (branches one after the other)."""
  out = []
  for step in plan:
    if isinstance(step, Stage):
      out.append(step)
    else:
      for branch in step:
        out += list(branch)
  return out


def wall_seconds(plan, seconds_of: Callable[[Stage], float],
                 parallel: bool = True) -> float:
  """The plan's wall time from each stage's seconds (side-by-side branches
  count as their longest)."""
  total = 0.0
  for step in plan:
    if isinstance(step, Stage):
      total += seconds_of(step)
    else:
      branch = [sum(seconds_of(s) for s in b) for b in step]
      total += (max(branch) if parallel else sum(branch)) if branch else 0
  return total


def _normal(value):
  """`value` as it reads back from JSON (tuples -> lists, keys -> str)."""
  return json.loads(json.dumps(value, sort_keys=True))


# Values of a setting that an older record lacks and that still match it: an
# option added since, at its off value, changes nothing that ran.
OFF_VALUES = (None, False)


def first_difference(old, new, prefix: str = '') -> Optional[str]:
  """The dotted name of the first setting that differs, with both values;
  None when they are equal. A key missing from `old` whose value in `new`
  is in OFF_VALUES does not differ (an option added since, left off)."""
  if isinstance(old, dict) and isinstance(new, dict):
    for key in sorted(set(old) | set(new), key=str):
      if key not in old and new[key] in OFF_VALUES:
        continue
      diff = first_difference(old.get(key), new.get(key),
                              f'{prefix}{key}.')
      if diff:
        return diff
    return None
  if old != new:
    return f'{prefix.rstrip(".") or "settings"}: {old!r} there, {new!r} now'
  return None


class Pipeline:
  """Runs a plan's stages in order under `out`, skipping finished ones."""

  def __init__(self, name: str, out: str, plan, parallel: bool = True,
               log: Callable[[str], None] = progress.write_line):
    self.name, self.out, self.plan = name, out, tuple(plan)
    self.parallel, self.log = parallel, log
    self.stages = stages(self.plan)
    ids = [s.id for s in self.stages]
    if len(set(ids)) != len(ids):
      raise ValueError(f'{name}: a stage id repeats in {ids}.')
    self._lock = threading.Lock()
    self._done = set()
    self._took = {}  # Stage id -> seconds, of the stages run this time.
    self.start = time.time()

  # -- markers -----------------------------------------------------------------

  def marker_path(self, stage_id: str) -> str:
    folder, name = os.path.split(stage_id)
    return os.path.join(self.out, folder, 'stages', f'{name}.json')

  def finished(self, stage_id: str) -> Optional[dict]:
    """The marker of a finished stage, or None."""
    path = self.marker_path(stage_id)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)

  def _reusable(self, stage: Stage, done: Optional[dict]) -> bool:
    """Whether a finished stage's marker fits the stage's settings now.
    Markers of older rtc without settings fit any stage but a redo one."""
    if done is None:
      return False
    if 'settings' not in done:
      return not stage.redo
    return first_difference(done['settings'],
                            _normal(stage.settings)) is None

  def check(self) -> None:
    """Raises ValueError (one line) if a finished stage that may not be
    redone was run with other settings. Writes nothing."""
    for stage in self.stages:
      done = self.finished(stage.id)
      if stage.redo or done is None or self._reusable(stage, done):
        continue
      diff = first_difference(done['settings'], _normal(stage.settings),
                              stage.option)
      raise ValueError(
          f'{self.marker_path(stage.id)}: stage {stage.id} ran with other '
          f'settings ({diff}); pass a new --output_dir, or delete '
          f'{os.path.join(self.out, os.path.dirname(stage.id))} to start '
          'over.')

  def _mark(self, stage: Stage, seconds: float, outputs) -> None:
    info = {'stage': stage.id, 'seconds': seconds, 'outputs': outputs,
            'settings': _normal(stage.settings),
            'finished': datetime.datetime.now().isoformat(timespec='seconds')}
    checkpoints.atomic_write_bytes(self.marker_path(stage.id),
                                   json.dumps(info, indent=2).encode())

  # -- running -----------------------------------------------------------------

  def calibration(self) -> float:
    """Seconds the stages run so far took over their estimates (1 before
    any has finished)."""
    with self._lock:
      expected = sum(s.seconds for s in self.stages if s.id in self._took)
      if not self._took or expected <= 0:
        return 1.0
      return sum(self._took.values()) / expected

  def seconds_left(self) -> float:
    scale = self.calibration()
    with self._lock:
      return wall_seconds(
          self.plan, lambda s: 0 if s.id in self._done else scale * s.seconds,
          self.parallel)

  def _prefix(self, stage: Stage) -> str:
    return (f'[{self.name}] stage {self.stages.index(stage) + 1}/'
            f'{len(self.stages)} {stage.id}')

  def _stage(self, stage: Stage) -> None:
    done = self.finished(stage.id)
    if done is not None and not self._reusable(stage, done):
      self.log(f'[{self.name}] {stage.id}: made from '
               f'{done.get("settings", done.get("inputs"))}, now '
               f'{stage.settings}: redoing it')
      done = None
    if done is not None:
      self.log(f'{self._prefix(stage)}: finished earlier '
               f'({done["seconds"]:.0f}s), skipping')
    else:
      self.log(f'{self._prefix(stage)}: elapsed '
               f'{progress.format_duration(time.time() - self.start)}, about '
               f'{progress.format_duration(self.seconds_left())} left (estimate)')
      t0 = time.time()
      outputs = stage.work()
      self._mark(stage, time.time() - t0, outputs)
      with self._lock:
        self._took[stage.id] = time.time() - t0
      self.log(f'[{self.name}] {stage.id} done in '
               f'{progress.format_duration(time.time() - t0)}')
    with self._lock:
      self._done.add(stage.id)

  def _branches(self, branches) -> None:
    """Runs each branch's stages in order, the branches side by side.

    Every branch runs to its end (or its first error); then the first
    error, if any, is raised. Daemon threads, so Ctrl-C stops the process;
    a re-run resumes the interrupted stages.
    """
    if not self.parallel:
      for branch in branches:
        for stage in branch:
          self._stage(stage)
      return
    errors = [None] * len(branches)

    def run_branch(i):
      try:
        for stage in branches[i]:
          self._stage(stage)
      except BaseException as e:  # pylint: disable=broad-except
        errors[i] = e

    threads = [threading.Thread(target=run_branch, args=(i,), daemon=True,
                                name='+'.join(s.id for s in b))
               for i, b in enumerate(branches)]
    for t in threads:
      t.start()
    for t in threads:
      while t.is_alive():
        t.join(0.5)
    for e in errors:
      if e is not None:
        raise e

  def run(self, then: str = '') -> str:
    """Checks, then runs every stage; returns the output directory. `then`
    ends the last line (e.g. where the report is)."""
    self.check()
    os.makedirs(self.out, exist_ok=True)
    self.start = time.time()
    self._done, self._took = set(), {}
    for step in self.plan:
      if isinstance(step, Stage):
        self._stage(step)
      else:
        self._branches(step)
    self.log(f'[{self.name}] all stages done in '
             f'{progress.format_duration(time.time() - self.start)}{then}')
    return self.out

  def recorded_seconds(self) -> float:
    """The plan's wall time from the finished stages' markers."""
    return wall_seconds(
        self.plan, lambda s: (self.finished(s.id) or {}).get('seconds', 0),
        self.parallel)
