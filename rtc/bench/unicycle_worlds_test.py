"""The unicycle variants: each edit changes what it names and nothing else,
the committed worlds/ equal what the binary writes, and they load as medium
levels (the m/ class's static parameters, so they train beside m/ levels)."""

import csv
import json
import os
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from rtc.bench import unicycle_worlds as uw
from rtc.common.base import paths
from rtc.common.env import level_ids


def _source():
  with open(os.path.join(level_ids.package_worlds_dir(), uw.SOURCE)) as f:
    return json.load(f)


def _diff(a, b, path=''):
  """Paths of the leaves where two JSON trees differ."""
  if isinstance(a, dict):
    return [p for k in a for p in _diff(a[k], b[k], f'{path}/{k}')]
  if isinstance(a, list):
    return [p for i, (x, y) in enumerate(zip(a, b))
            for p in _diff(x, y, f'{path}/{i}')]
  return [] if a == b else [path]


class UnicycleWorldsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('unchanged', {}, []),
      ('goal_x', {'goal_x': 3.92},
       ['/env_state/circle/1/position/0']),
      ('goal_y', {'goal_y': 1.36},
       ['/env_state/circle/1/position/1']),
      ('motor', {'motor': 0.7},
       ['/env_state/joint/0/motor_speed', '/env_state/joint/0/motor_power']),
      # The wheel, post and seat, both joints and the seat's thruster move;
      # the floor, walls, goal and the floor's thruster stay.
      ('shift_x', {'shift_x': -0.6},
       ['/env_state/polygon/4/position/0', '/env_state/polygon/5/position/0',
        '/env_state/circle/0/position/0',
        '/env_state/joint/0/global_position/0',
        '/env_state/joint/1/global_position/0',
        '/env_state/thruster/1/global_position/0']),
  )
  def test_an_edit_changes_only_its_fields(self, edits, changed):
    level = _source()
    variant = uw.make_variant(level, edits)
    self.assertCountEqual(_diff(level, variant), changed)
    self.assertEqual(level, _source())  # The source is not modified.

  def test_values(self):
    level = _source()
    shifted = uw.make_variant(level, {'shift_x': -0.6})
    for a, b in ((level['env_state']['circle'][uw.WHEEL],
                  shifted['env_state']['circle'][uw.WHEEL]),
                 (level['env_state']['polygon'][uw.SEAT],
                  shifted['env_state']['polygon'][uw.SEAT])):
      self.assertAlmostEqual(float(b['position']['0']),
                             float(a['position']['0']) - 0.6, places=6)
    weak = uw.make_variant(level, {'motor': 0.5})
    self.assertAlmostEqual(
        float(weak['env_state']['joint'][uw.DRIVE]['motor_speed']),
        float(level['env_state']['joint'][uw.DRIVE]['motor_speed']) / 2)
    with self.assertRaisesRegex(ValueError, r"Unknown edit\(s\) \['goal_z'\]"):
      uw.make_variant(level, {'goal_z': 1.0})

  def test_committed_worlds_are_what_the_binary_writes(self):
    out = tempfile.mkdtemp()
    paths_written = uw.write_worlds(out)
    self.assertLen(paths_written, len(uw.VARIANTS))
    committed = os.path.join(paths.repo_root(), 'worlds', 'm')
    self.assertCountEqual(os.listdir(committed),
                          [n + '.json' for n in uw.VARIANTS])
    for path in paths_written:
      with open(path, 'rb') as f, open(os.path.join(
          committed, os.path.basename(path)), 'rb') as g:
        self.assertEqual(f.read(), g.read(), path)

  def test_they_load_as_medium_levels(self):
    from rtc.common.env import envs  # pylint: disable=g-import-not-at-top
    ids = [f'm/{n}.json' for n in uw.VARIANTS]
    levels = envs.load_levels(
        ids, os.path.join(paths.repo_root(), 'worlds'))
    shipped = envs.load_levels(('m/h0_unicycle.json',))
    self.assertEqual(levels.static_params, shipped.static_params)
    self.assertEqual(list(levels.names),
                     ['worlds_m_' + n for n in uw.VARIANTS])
    # The unchanged copy plays as the shipped level: same state, same name.
    i = list(uw.VARIANTS).index('h0_unicycle')
    self.assertEqual(levels.names[i], shipped.names[0])
    for a, b in zip(jax.tree.leaves(levels.level(i)),
                    jax.tree.leaves(shipped.level(0))):
      np.testing.assert_array_equal(a, b)

  def test_worlds_is_found_from_any_directory(self):
    # `--config.expert.worlds_dir=worlds` (the suite's) from a directory
    # without one means the repository's; a folder of that name there wins.
    tmp = tempfile.mkdtemp()
    with mock.patch.dict(os.environ, {'BUILD_WORKING_DIRECTORY': tmp}):
      self.assertEqual(paths.resolve_shipped_dir('worlds'),
                       os.path.join(paths.repo_root(), 'worlds'))
      os.mkdir(os.path.join(tmp, 'worlds'))
      self.assertEqual(paths.resolve_shipped_dir('worlds'),
                       os.path.join(tmp, 'worlds'))
      self.assertEqual(paths.resolve_shipped_dir(''), '')

  def test_the_suite_is_the_levels_that_qualified(self):
    # configs/quickstart.py:suite is what the replicated selection run
    # found: every level whose naive flow drop over replicates qualified.
    from configs import quickstart  # pylint: disable=g-import-not-at-top
    with open(os.path.join(paths.repo_root(), 'docs', 'benchmark_unicycle',
                           'suite_levels.csv'), newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertGreaterEqual(len(rows), 3)
    for r in rows:
      self.assertEqual(int(r['replicates']), 3, r)
      self.assertEqual(int(r['qualifies']), int(float(r['naive_drop'])
                                                 >= 0.2), r)
    self.assertCountEqual(quickstart.SUITE,
                          [r['level'] for r in rows if r['qualifies'] == '1'])
    c = quickstart.get_config('suite')
    self.assertEqual(c.expert.worlds_dir, quickstart.SUITE_WORLDS)
    for level in quickstart.SUITE:
      self.assertTrue(os.path.exists(os.path.join(
          paths.resolve_shipped_dir(c.expert.worlds_dir), level + '.json')))

  def test_bad_out_is_one_error_line(self):
    out = tempfile.mkdtemp()
    path = os.path.join(out, 'file')
    open(path, 'w').close()
    proc = subprocess.run(
        [sys.executable, '-m', 'rtc.bench.unicycle_worlds', f'--out={path}'],
        capture_output=True, text=True, cwd=paths.repo_root(), check=False)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
    self.assertEqual(errors, [f'error: --out={path} is a file: name a '
                              'folder.'])
    self.assertEqual(os.listdir(out), ['file'])


if __name__ == '__main__':
  absltest.main()
