"""Tests for rtc.common.env.data."""

import os

from absl.testing import absltest
import numpy as np

from rtc.common.env import data


def _write(path, t_len=10, num_envs=3, obs_dim=4, compressed=False,
           done=None):
  rng = np.random.default_rng(0)
  obs = rng.normal(size=(t_len, num_envs, obs_dim)).astype(np.float32)
  # action[t, e] = 100 * e + t, so a chunk's source is readable.
  action = (100.0 * np.arange(num_envs)[None, :, None] +
            np.arange(t_len)[:, None, None]) * np.ones((1, 1, 2))
  if done is None:
    done = np.zeros((t_len, num_envs), bool)
  save = np.savez_compressed if compressed else np.savez
  save(path, obs=obs, action=action.astype(np.float32), done=done,
       solved=done, return_=np.zeros_like(obs[..., 0]),
       length=np.zeros(done.shape, np.int32))
  return obs, action


class DataTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path

  def test_episode_ends(self):
    done = np.zeros((6, 2), bool)
    done[2, 0] = True
    ends = data.episode_ends(done)
    # env 0: steps 0..2 end at 2, 3..5 at 5 (stream end); env 1 ends at 5.
    np.testing.assert_array_equal(ends, [2, 2, 2, 5, 5, 5,
                                         11, 11, 11, 11, 11, 11])

  def test_chunks_zero_actions_of_later_episodes(self):
    done = np.zeros((10, 3), bool)
    done[4, 1] = True
    path = os.path.join(self.dir, 'a.npz')
    obs, _ = _write(path, done=done)
    ds = data.load_level_dataset(path, chunk_size=4)
    self.assertIsInstance(ds.obs, np.memmap)
    self.assertEqual(ds.num_examples, 30)
    # Env 1 (flat index 10 + t), t=2: actions 2,3,4 of env 1, then zero.
    o, a = ds.batch(np.array([12, 3, 8]))
    np.testing.assert_array_equal(o[0], obs[2, 1])
    np.testing.assert_array_equal(a[0, :, 0], [102, 103, 104, 0])
    # Env 0, t=3: no done inside the window.
    np.testing.assert_array_equal(a[1, :, 0], [3, 4, 5, 6])
    # Env 0, t=8: the stream ends after t=9, never runs into env 1.
    np.testing.assert_array_equal(a[2, :, 0], [8, 9, 0, 0])
    np.testing.assert_array_equal(o[2], obs[8, 0])

  def test_compressed_files_load_too(self):
    path = os.path.join(self.dir, 'c.npz')
    obs, _ = _write(path, compressed=True)
    ds = data.load_level_dataset(path, chunk_size=2)
    self.assertNotIsInstance(ds.obs, np.memmap)
    np.testing.assert_array_equal(ds.batch(np.array([11]))[0][0], obs[1, 1])

  def test_batcher_epochs(self):
    paths = []
    for i, t_len in enumerate([10, 6]):
      paths.append(os.path.join(self.dir, f'l{i}.npz'))
      _write(paths[-1], t_len=t_len)
    sets = [data.load_level_dataset(p, 3) for p in paths]
    batcher = data.MultiLevelBatcher(sets, batch_size=4, seed=0)
    self.assertEqual(batcher.steps_per_epoch, 30 // 4)
    idx = batcher.epoch_indices()
    self.assertEqual(idx.shape, (7, 2, 4))
    # Level 0 sees distinct examples within an epoch (a permutation).
    self.assertLen(set(idx[:, 0].ravel().tolist()), 28)
    self.assertTrue(np.all(idx[:, 1] < 18))
    o, a = batcher.batch(idx[0])
    self.assertEqual(o.shape, (2, 4, 4))
    self.assertEqual(a.shape, (2, 4, 3, 2))

  def test_batcher_state_restores_the_shuffles(self):
    path = os.path.join(self.dir, 'l.npz')
    _write(path, t_len=10)
    sets = [data.load_level_dataset(path, 3)]
    batcher = data.MultiLevelBatcher(sets, batch_size=4, seed=0)
    batcher.epoch_indices()
    state = batcher.state()
    second = batcher.epoch_indices()
    # A new batcher (another seed) restored to that state draws the same
    # epoch as the first one's second epoch.
    other = data.MultiLevelBatcher(sets, batch_size=4, seed=1)
    self.assertFalse(np.array_equal(other.epoch_indices(), second))
    other.restore(state)
    np.testing.assert_array_equal(other.epoch_indices(), second)

  def test_errors_name_the_file(self):
    missing = os.path.join(self.dir, 'missing.npz')
    with self.assertRaisesRegex(FileNotFoundError, 'missing.npz'):
      data.load_level_dataset(missing, 8)
    corrupt = os.path.join(self.dir, 'corrupt.npz')
    with open(corrupt, 'wb') as f:
      f.write(b'not a zip file at all')
    with self.assertRaisesRegex(ValueError, 'corrupt.npz.*corrupt'):
      data.load_level_dataset(corrupt, 8)
    partial = os.path.join(self.dir, 'partial.npz')
    np.savez(partial, obs=np.zeros((2, 2, 3), np.float32))
    with self.assertRaisesRegex(ValueError, r"partial.npz lacks.*action"):
      data.load_level_dataset(partial, 8)
    bad = os.path.join(self.dir, 'bad.npz')
    np.savez(bad, obs=np.zeros((4, 2, 3), np.float32),
             action=np.zeros((4, 3, 2), np.float32),
             done=np.zeros((4, 2), bool))
    with self.assertRaisesRegex(ValueError, 'bad.npz: leading axes'):
      data.load_level_dataset(bad, 8)

  def test_batch_larger_than_dataset(self):
    path = os.path.join(self.dir, 's.npz')
    _write(path, t_len=2, num_envs=2)
    with self.assertRaisesRegex(ValueError, 'batch_size'):
      data.MultiLevelBatcher([data.load_level_dataset(path, 2)], 8, 0)


  def test_peek_and_process_local_batches(self):
    paths = [os.path.join(self.dir, f'{i}.npz') for i in range(3)]
    for i, path in enumerate(paths):
      _write(path, t_len=10 + 2 * i, compressed=(i == 1))
    info = data.peek_level(paths[1])  # Compressed: headers only.
    self.assertEqual((info.num_examples, info.obs_dim, info.action_dim),
                     (36, 4, 2))
    full = [data.load_level_dataset(p, 3) for p in paths]
    whole = data.MultiLevelBatcher(full, 8, seed=5)
    # A process holding slots of levels 2, 2 (a pad) loads only level 2.
    part = data.MultiLevelBatcher(
        [data.peek_level(paths[0]), data.peek_level(paths[1]), full[2]], 8,
        seed=5, slot_levels=[2, 2])
    self.assertEqual(part.steps_per_epoch, whole.steps_per_epoch)
    idx_whole, idx_part = whole.epoch_indices(), part.epoch_indices()
    np.testing.assert_array_equal(idx_whole, idx_part)  # Same shuffles.
    obs_w, act_w = whole.batch(idx_whole[0])
    obs_p, act_p = part.batch(idx_part[0])
    self.assertEqual(obs_p.shape, (2, 8, 4))
    np.testing.assert_array_equal(obs_p[0], obs_w[2])
    np.testing.assert_array_equal(obs_p[1], obs_w[2])
    np.testing.assert_array_equal(act_p[0], act_w[2])
    with self.assertRaisesRegex(ValueError, 'loaded, not peeked'):
      data.MultiLevelBatcher([data.peek_level(paths[0]), full[1]], 8, 0,
                             slot_levels=[0])
    with self.assertRaisesRegex(FileNotFoundError, 'not found'):
      data.peek_level(os.path.join(self.dir, 'missing.npz'))


if __name__ == '__main__':
  absltest.main()
