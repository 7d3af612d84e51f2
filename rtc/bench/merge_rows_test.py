"""merge_rows: later evaluations join a benchmark's rows, paired by replicate."""

import csv
import os
import subprocess
import sys

from absl.testing import absltest

from rtc.bench import merge_rows

BENCH_COLUMNS = ('returned_episode_solved', 'delay', 'method', 'level',
                 'execute_horizon', 'policy', 'replicate', 'eval_seed',
                 'num_evals', 'run_dir', 'settings_hash')
EVAL_COLUMNS = ('returned_episode_solved', 'delay', 'method', 'level',
                'execute_horizon')


def _write(path, columns, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(columns)
    w.writerows(rows)


class MergeRowsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    self.bench = os.path.join(self.root, 'bench')
    rows = []
    for rep, seed in ((0, 0), (1, 1000)):
      for policy in ('flow', 'dd'):
        rows.append((0.5, 2, 'naive', 'a', 2, policy, rep, seed, 256,
                     f'r{rep}/logs-{policy}', 'h' + policy))
    _write(os.path.join(self.bench, 'results.csv'), BENCH_COLUMNS, rows)
    self.evals = os.path.join(self.root, 'evals')
    for rep, solved in ((0, 0.25), (1, 0.75)):
      _write(os.path.join(self.evals, f'r{rep}', 'flow', 'results.csv'),
             EVAL_COLUMNS, [(solved, 2, 'naive', 'a', 2),
                            (solved, 2, 'bid', 'a', 2)])

  def test_rows_get_their_replicates_provenance(self):
    columns, rows = merge_rows.merge(self.bench, self.evals, 'flow',
                                     '_legacy')
    self.assertEqual(tuple(columns), BENCH_COLUMNS)
    self.assertEqual([r['policy'] for r in rows], ['flow'] * 2 +
                     ['flow_legacy'] * 4)
    added = rows[2:]
    self.assertEqual([(r['replicate'], r['eval_seed'], r['run_dir'],
                       r['returned_episode_solved'], r['method'])
                      for r in added],
                     [('0', '0', 'r0/logs-flow', '0.25', 'naive'),
                      ('0', '0', 'r0/logs-flow', '0.25', 'bid'),
                      ('1', '1000', 'r1/logs-flow', '0.75', 'naive'),
                      ('1', '1000', 'r1/logs-flow', '0.75', 'bid')])
    # Their settings are the evaluation's own, not the benchmark's hash.
    self.assertEqual({r['settings_hash'] for r in added}, {''})
    # No suffix: the same policy, more methods.
    _, rows = merge_rows.merge(self.bench, self.evals, 'flow', '')
    self.assertEqual({r['policy'] for r in rows}, {'flow'})

  def _main(self, policy, out, *more):
    return subprocess.run(
        [sys.executable, '-m', 'rtc.bench.merge_rows',
         f'--benchmark={self.bench}', f'--evals={self.evals}',
         f'--policy={policy}', f'--output={out}', *more],
        env=dict(os.environ,
                 PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
        capture_output=True, text=True, check=False)

  def test_binary_writes_every_policy(self):
    for rep in (0, 1):
      _write(os.path.join(self.evals, f'r{rep}', 'dd', 'results.csv'),
             EVAL_COLUMNS, [(0.5, 2, 'bid', 'a', 2)])
    out = os.path.join(self.root, 'merged.csv')
    proc = self._main('flow,dd', out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    with open(out, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([(r['policy'], r['method'], r['replicate'])
                      for r in rows],
                     [('flow', 'naive', '0'), ('flow', 'naive', '1'),
                      ('flow', 'naive', '0'), ('flow', 'bid', '0'),
                      ('flow', 'naive', '1'), ('flow', 'bid', '1'),
                      ('dd', 'naive', '0'), ('dd', 'naive', '1'),
                      ('dd', 'bid', '0'), ('dd', 'bid', '1')])

  def test_as_is_policies_follow_unchanged(self):
    # dd has no later evaluations: its benchmark rows follow as they are.
    out = os.path.join(self.root, 'merged.csv')
    proc = self._main('flow', out, '--as_is=dd')
    self.assertEqual(proc.returncode, 0, proc.stderr)
    with open(out, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertLen(rows, 8)
    with open(os.path.join(self.bench, 'results.csv'), newline='') as f:
      self.assertEqual(rows[6:], [r for r in csv.DictReader(f)
                                  if r['policy'] == 'dd'])
    # A policy the benchmark lacks: one error line, nothing written.
    os.remove(out)
    proc = self._main('flow', out, '--as_is=sac')
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertIn("no rows of --as_is='sac'", proc.stderr)
    self.assertFalse(os.path.exists(out))

  def test_missing_replicate_is_one_line_and_writes_nothing(self):
    os.remove(os.path.join(self.evals, 'r1', 'flow', 'results.csv'))
    out = os.path.join(self.root, 'merged.csv')
    proc = self._main('flow', out)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    errors = [l for l in proc.stderr.splitlines() if 'error' in l.lower()]
    self.assertEqual(errors, [
        'error: ' + os.path.join(self.evals, 'r1', 'flow', 'results.csv') +
        ' not found.'], proc.stderr)
    self.assertFalse(os.path.exists(out))

  def test_unknown_policy_and_foreign_columns(self):
    with self.assertRaisesRegex(ValueError, r"no rows of --policy='sac'"):
      merge_rows.merge(self.bench, self.evals, 'sac', '')
    _write(os.path.join(self.evals, 'r0', 'flow', 'results.csv'),
           ('solved_share',), [(0.5,)])
    with self.assertRaisesRegex(ValueError, r"columns \['solved_share'\]"):
      merge_rows.merge(self.bench, self.evals, 'flow', '')


OTHER_COLUMNS = ('returned_episode_solved', 'delay', 'method', 'level',
                 'execute_horizon', 'policy', 'replicate', 'expert_seed',
                 'data_seed')


class OtherRunTest(absltest.TestCase):
  """--other_run: another run's policies, paired by replicate."""

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    self.bench = os.path.join(self.root, 'bench')
    self.other = os.path.join(self.root, 'other')
    self.flow = [(0.5 + 0.25 * rep, 4, 'naive', 'a', 4, 'flow', rep, rep,
                  rep) for rep in (0, 1)]
    _write(os.path.join(self.bench, 'results.csv'), OTHER_COLUMNS,
           self.flow + [(0.5, 4, 'naive', 'a', 4, 'dd', rep, rep, rep)
                        for rep in (0, 1)])
    self.tt = [(0.3 + rep, 4, 'training_time', 'a', 4, 'dd_tt', rep, rep,
                rep) for rep in (0, 1)]
    _write(os.path.join(self.other, 'results.csv'), OTHER_COLUMNS,
           self.flow + self.tt)

  def _main(self, *flags):
    out = os.path.join(self.root, 'merged.csv')
    proc = subprocess.run(
        [sys.executable, '-m', 'rtc.bench.merge_rows',
         f'--benchmark={self.bench}', f'--output={out}', *flags],
        env=dict(os.environ,
                 PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
        capture_output=True, text=True, check=False)
    return proc, out

  def test_added_after_this_runs_rows(self):
    proc, out = self._main('--as_is=flow,dd', f'--other_run={self.other}',
                           '--other_policy=dd_tt')
    self.assertEqual(proc.returncode, 0, proc.stderr)
    with open(out, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([(r['policy'], r['replicate'],
                       r['returned_episode_solved']) for r in rows],
                     [('flow', '0', '0.5'), ('flow', '1', '0.75'),
                      ('dd', '0', '0.5'), ('dd', '1', '0.5'),
                      ('dd_tt', '0', '0.3'), ('dd_tt', '1', '1.3')])

  def test_runs_that_do_not_pair_are_refused(self):
    other_csv = os.path.join(self.other, 'results.csv')
    cases = [
        # A shared policy's row differs: other experts, data or policies.
        ([(0.25,) + self.flow[0][1:], self.flow[1]] + self.tt,
         r'flow naive at d = 4 on a, replicate 0, solved 0.25 where .* '
         r'has 0.5: not the same experts'),
        # A replicate with other seeds.
        (self.flow + [self.tt[0], self.tt[1][:7] + (5, 1)],
         r'replicate 1 \(expert and data seeds .*is not one of'),
        # No shared row to check the pairing with.
        (self.tt, 'shares no row with'),
    ]
    for rows, message in cases:
      _write(other_csv, OTHER_COLUMNS, rows)
      with self.assertRaisesRegex(ValueError, message):
        merge_rows.other_rows(self.bench, self.other, ['dd_tt'])
    with self.assertRaisesRegex(ValueError,
                                r"already has rows of --other_policy='dd'"):
      merge_rows.other_rows(self.bench, self.other, ['dd'])
    # The binary: one error line, nothing written (the last case above,
    # and flags that go together).
    for flags, message in (
        (('--as_is=flow', f'--other_run={self.other}',
          '--other_policy=dd_tt'), 'shares no row with'),
        ((f'--other_run={self.other}',), '--other_run and --other_policy'),
        (('--policy=flow',), '--evals and --policy go together'),
        ((), 'Nothing to write')):
      proc, out = self._main(*flags)
      self.assertEqual(proc.returncode, 2, proc.stderr)
      errors = [l for l in proc.stderr.splitlines() if 'error' in l.lower()]
      self.assertLen(errors, 1, proc.stderr)
      self.assertIn(message, errors[0])
      self.assertFalse(os.path.exists(out))

if __name__ == '__main__':
  absltest.main()
