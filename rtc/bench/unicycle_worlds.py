r"""Variants of kinetix-env's m/h0_unicycle, for a CPU suite of delay-sensitive
levels (docs/benchmarks.md, "The level survey").

  bazel run //rtc/bench:unicycle_worlds [-- --out=worlds]

m/h0_unicycle is the one shipped CPU-sized level on which naive flow loses
solve rate with inference delay: its agent balances a motorised wheel
under a seat that must not touch the red floor while riding to a blue goal.
Each variant keeps that task and changes one thing (VARIANTS); they are
written as `<out>/m/<name>.json` in kinetix-env's level format, so
`--worlds_dir=<out>` (level survey) or `--config.expert.worlds_dir=<out>`
(quickstart, benchmark) trains and evaluates on them. The files are made
from the installed kinetix-env's own m/h0_unicycle.json, so re-running this
writes the same bytes.
"""

import copy
import json
import os

from absl import flags

from rtc.common.base import paths
from rtc.common.bc import checkpoints
from rtc.common.cli import cli
from rtc.common.env import level_ids

SOURCE = 'm/h0_unicycle.json'
GOAL = 1  # env_state.circle index of the blue goal (static).
WHEEL = 0  # env_state.circle index of the wheel.
SEAT, POST = 4, 5  # env_state.polygon indices of the seat (green), the post.
DRIVE = 0  # env_state.joint index of the wheel's motor.

# name: (what changes, {edit: value}). Edits: goal_x / goal_y set the goal's
# centre; shift_x moves the whole unicycle (wheel, post, seat, its joints
# and thrusters) sideways; motor scales the wheel motor's speed and power.
VARIANTS = {
    # The source itself, so one worlds_dir holds a suite of it and its
    # variants; its level name equals the shipped level's.
    'h0_unicycle': ('unchanged (kinetix-env\'s m/h0_unicycle)', {}),
    'unicycle_goal_far': ('goal 0.7 further right (x 3.22 -> 3.92)',
                          {'goal_x': 3.92}),
    'unicycle_goal_near': ('goal 0.6 nearer (x 3.22 -> 2.62)',
                           {'goal_x': 2.62}),
    'unicycle_goal_low': ('goal 0.2 lower (y 1.56 -> 1.36)',
                          {'goal_y': 1.36}),
    'unicycle_start_left': ('unicycle starts 0.6 further left (x 1.41 -> '
                            '0.81)', {'shift_x': -0.6}),
    'unicycle_weak_motor': ('wheel motor at 0.7x speed and power',
                            {'motor': 0.7}),
}


def _xy(v) -> list[float]:
  return [float(v['0']), float(v['1'])]


def _set_xy(v, x=None, y=None) -> None:
  if x is not None:
    v['0'] = x
  if y is not None:
    v['1'] = y


def make_variant(level: dict, edits: dict) -> dict:
  """A copy of the m/h0_unicycle level dict with `edits` applied."""
  unknown = set(edits) - {'goal_x', 'goal_y', 'shift_x', 'motor'}
  if unknown:
    raise ValueError(f'Unknown edit(s) {sorted(unknown)}.')
  out = copy.deepcopy(level)
  state = out['env_state']
  goal = state['circle'][GOAL]['position']
  _set_xy(goal, edits.get('goal_x'), edits.get('goal_y'))
  dx = edits.get('shift_x', 0.0)
  if dx:
    for shape in (state['circle'][WHEEL], state['polygon'][SEAT],
                  state['polygon'][POST]):
      _set_xy(shape['position'], _xy(shape['position'])[0] + dx)
    for joint in state['joint']:
      _set_xy(joint['global_position'], _xy(joint['global_position'])[0] + dx)
    for thruster in state['thruster']:
      if int(thruster['object_index']) in (SEAT, POST):
        p = thruster['global_position']
        _set_xy(p, _xy(p)[0] + dx)
  if 'motor' in edits:
    joint = state['joint'][DRIVE]
    for k in ('motor_speed', 'motor_power'):
      joint[k] = float(joint[k]) * edits['motor']
  return out


def write_worlds(out: str) -> list[str]:
  """Writes every variant under `<out>/m/`; returns their paths."""
  with open(os.path.join(level_ids.package_worlds_dir(), SOURCE)) as f:
    level = json.load(f)
  written = []
  os.makedirs(os.path.join(out, 'm'), exist_ok=True)
  for name, (_, edits) in VARIANTS.items():
    path = os.path.join(out, 'm', name + '.json')
    text = json.dumps(make_variant(level, edits), indent=1, sort_keys=True)
    checkpoints.atomic_write_bytes(path, text.encode())
    written.append(path)
  return written


FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'worlds', 'Folder to write m/<variant>.json into.')


def main(argv):
  del argv
  out = paths.resolve(FLAGS.out)
  if not out:
    raise ValueError('--out must name a folder (e.g. worlds).')
  if os.path.isfile(out):
    raise ValueError(f'--out={out} is a file: name a folder.')
  for path, (what, _) in zip(write_worlds(out), VARIANTS.values()):
    print(f'{paths.shown(path)}: {what}')


if __name__ == '__main__':
  cli.run(main)  # Bad input: one line `error: ...`, exit status 2.
