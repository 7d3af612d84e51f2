"""Tests for rtc.expert.store: run layout, statistics and checkpoint choice."""

import json
import os
import pickle

from absl.testing import absltest
import numpy as np

from rtc.common.bc import checkpoints
from rtc.expert import store

NAME = 'worlds_s_h0_weak_thrust'


def write_stats(run, seed, update, solved, name=NAME, as_list=False):
  path = store.stats_path(run, seed, update, name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  value = [solved, solved] if as_list else solved
  with open(path, 'w') as f:
    json.dump({store.SOLVED: value, store.RETURNS: 2 * solved - 1,
               store.LENGTHS: 30.0}, f)


def write_policy(run, seed, update, name=NAME):
  path = store.policy_path(run, seed, update, name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    pickle.dump({'agent': {'logstd': np.zeros(2)}}, f)


def make_run(root, solved_by_seed, name=NAME):
  """solved_by_seed: {seed: {update: solve rate}} with policies and stats."""
  for seed, rates in solved_by_seed.items():
    for update, rate in rates.items():
      write_stats(root, seed, update, rate, name, as_list=seed % 2 == 1)
      write_policy(root, seed, update, name)
  return root


class ChooseCheckpointTest(absltest.TestCase):

  def test_random_among_those_meeting_the_threshold(self):
    solved = {20: 0.1, 40: 0.7, 60: 0.65, 80: 0.9, 100: 0.3}
    rng = np.random.default_rng(0)
    picks = [store.choose_checkpoint(solved, 0.65, rng) for _ in range(300)]
    self.assertTrue(all(met for _, met in picks))
    counts = {u: sum(p == u for p, _ in picks) for u in solved}
    self.assertEqual(counts[20] + counts[100], 0)
    for u in (40, 60, 80):  # Uniform over the three: ~100 each.
      self.assertBetween(counts[u], 60, 140)

  def test_best_when_none_meets_the_threshold(self):
    rng = np.random.default_rng(0)
    self.assertEqual(store.choose_checkpoint(
        {20: 0.1, 40: 0.5, 60: 0.3}, 0.65, rng), (40, False))
    # Ties go to the latest.
    self.assertEqual(store.choose_checkpoint(
        {20: 0.5, 40: 0.2, 60: 0.5}, 0.65, rng), (60, False))


class ChooseExpertsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path

  def test_mixture_leaves_out_seeds_below_threshold(self):
    run = make_run(self.root, {0: {20: 0.2, 40: 0.9},
                               1: {20: 0.3, 40: 0.5},
                               2: {20: 0.7, 40: 0.8}})
    choices = store.choose_experts(run, NAME, 0.65,
                                   np.random.default_rng(0))
    by_seed = {c.seed: c for c in choices}
    self.assertEqual(sorted(by_seed), [0, 1, 2])
    self.assertEqual((by_seed[0].update, by_seed[0].in_mixture), (40, True))
    self.assertEqual((by_seed[1].update, by_seed[1].in_mixture), (40, False))
    self.assertAlmostEqual(by_seed[1].solved, 0.5)  # A list in the file.
    self.assertTrue(by_seed[2].in_mixture)
    self.assertIn(by_seed[2].update, (20, 40))

  def test_no_seed_meets_threshold_uses_the_single_best(self):
    run = make_run(self.root, {0: {20: 0.2, 40: 0.4},
                               1: {20: 0.5, 40: 0.1}})
    choices = store.choose_experts(run, NAME, 0.65,
                                   np.random.default_rng(0))
    self.assertEqual([(c.seed, c.update, c.in_mixture) for c in choices],
                     [(0, 40, False), (1, 20, True)])

  def test_stats_without_a_policy_are_ignored(self):
    # An interrupted checkpoint: stats written, the policy not yet.
    run = make_run(self.root, {0: {20: 0.9}})
    write_stats(run, 0, 40, 1.0)
    choices = store.choose_experts(run, NAME, 0.65,
                                   np.random.default_rng(0))
    self.assertEqual(choices[0].update, 20)
    self.assertEqual(store.level_names(run), [NAME])

  def test_written_checkpoint_round_trips(self):
    params = {'agent': {'logstd': np.arange(3, dtype=np.float32)}}
    store.write_checkpoint(self.root, 3, 60, NAME, params,
                           {store.SOLVED: np.float32(0.75), 'episodes': 4})
    self.assertEqual(store.seeds(self.root), [3])
    self.assertEqual(store.updates(self.root, 3), [60])
    stats = store.read_stats(store.stats_path(self.root, 3, 60, NAME))
    self.assertEqual(stats, {store.SOLVED: 0.75, 'episodes': 4.0})
    loaded = checkpoints.load_params(store.policy_path(self.root, 3, 60,
                                                       NAME))
    np.testing.assert_array_equal(loaded['agent']['logstd'], [0, 1, 2])


class BadInputTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path

  def test_missing_run_dir(self):
    missing = os.path.join(self.root, 'nope')
    with self.assertRaisesRegex(FileNotFoundError, f'{missing}.*run_path'):
      store.level_names(missing)

  def test_no_checkpoints(self):
    os.makedirs(os.path.join(self.root, 'seed_0', '20'))
    with self.assertRaisesRegex(FileNotFoundError,
                                'no expert checkpoints.*train'):
      store.level_names(self.root)
    make_run(self.root, {0: {20: 0.9}}, name='worlds_s_other')
    with self.assertRaisesRegex(FileNotFoundError,
                                f'No checkpoints of level {NAME}'):
      store.choose_experts(self.root, NAME, 0.65, np.random.default_rng(0))

  def test_missing_stats_file(self):
    write_policy(self.root, 0, 20)
    path = store.stats_path(self.root, 0, 20, NAME)
    with self.assertRaisesRegex(FileNotFoundError,
                                f'{path} not found.*restore it'):
      store.choose_experts(self.root, NAME, 0.65, np.random.default_rng(0))

  def test_corrupt_stats_file(self):
    make_run(self.root, {0: {20: 0.9}})
    path = store.stats_path(self.root, 0, 20, NAME)
    with open(path, 'w') as f:
      f.write('{"returned_episode_solved": 0.')
    with self.assertRaisesRegex(ValueError, f'{path} is corrupt'):
      store.choose_experts(self.root, NAME, 0.65, np.random.default_rng(0))
    with open(path, 'w') as f:
      json.dump({'returns': 1.0}, f)
    with self.assertRaisesRegex(ValueError, f'{path} lacks'):
      store.read_stats(path)
    with open(path, 'w') as f:
      json.dump({store.SOLVED: 'high'}, f)
    with self.assertRaisesRegex(ValueError, 'not a number'):
      store.read_stats(path)


if __name__ == '__main__':
  absltest.main()
