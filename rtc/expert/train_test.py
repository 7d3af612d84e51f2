"""End-to-end tests: expert training and data generation on tiny settings.

Both go through the binaries' entry points (`train.train`,
`generate_data.generate`) on the smallest packaged level. The run trained in
setUpClass feeds the data-generation tests, including a copy of it in the
earlier implementation's format.
"""

import json
import os
import pickle
import shutil
import tempfile

from absl.testing import absltest
import numpy as np

from configs import data as data_config
from configs import expert as expert_config
from rtc.common.base import cache
from rtc.common.bc import checkpoints
from rtc.common.bc import summary
from rtc.common.env import data as data_lib
from rtc.common.env import envs
from rtc.common.testlib import testing
from rtc.expert import agent as agent_lib
from rtc.expert import generate_data
from rtc.expert import level_files
from rtc.expert import ppo
from rtc.expert import store
from rtc.expert import train

LEVEL_NAME = envs.level_name(testing.TINY_LEVEL)
HIDDEN = 16


def tiny_train_config(logdir, run_name='run', **overrides):
  c = expert_config.get_config('quickstart')
  c.levels = testing.TINY_LEVEL
  c.logdir = logdir
  c.run_name = run_name
  c.num_seeds = 2
  c.num_envs = 4
  c.num_steps = 8
  c.num_minibatches = 2
  c.update_epochs = 1
  c.hidden_dim = HIDDEN
  c.num_updates = 3
  c.save_every = 2
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


def tiny_data_config(run_path, **overrides):
  c = data_config.get_config('quickstart')
  c.run_path = run_path
  c.num_envs = 8
  c.num_steps = 40  # 5 steps per env: one full and one partial chunk.
  c.chunk_steps = 4
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


def to_reference_format(run_dir, out_dir):
  """A copy of an rtc expert run as the earlier implementation wrote it."""
  for seed in store.seeds(run_dir):
    for update in store.updates(run_dir, seed):
      params = checkpoints.load_params(
          store.policy_path(run_dir, seed, update, LEVEL_NAME))
      ref = {part: {'layers': {2 * i: {
          'kernel': params[f'agent/{part}_{i}']['w'],
          'bias': params[f'agent/{part}_{i}']['b']} for i in range(3)}}
             for part in ('actor', 'critic')}
      ref['logstd'] = params['agent']['logstd']
      path = store.policy_path(out_dir, seed, update, LEVEL_NAME)
      os.makedirs(os.path.dirname(path))
      with open(path, 'wb') as f:
        pickle.dump(ref, f)
      stats = store.read_stats(store.stats_path(run_dir, seed, update,
                                                LEVEL_NAME))
      spath = store.stats_path(out_dir, seed, update, LEVEL_NAME)
      os.makedirs(os.path.dirname(spath))
      with open(spath, 'w') as f:
        json.dump({store.SOLVED: [stats[store.SOLVED]],
                   store.RETURNS: [stats[store.RETURNS]],
                   store.LENGTHS: [stats[store.LENGTHS]]}, f)
  return out_dir


class ExpertPipelineTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.root, ignore_errors=True)
    cls.logdir = os.path.join(cls.root, 'logs-expert')
    cls.logs = []
    cls.run_dir = train.train(tiny_train_config(cls.logdir),
                              log=cls.logs.append)
    cls.gen_logs = []
    cls.data_paths = generate_data.generate(tiny_data_config(cls.run_dir),
                                            log=cls.gen_logs.append)

  # -- training ---------------------------------------------------------------

  def test_checkpoint_layout_and_stats(self):
    self.assertEqual(self.run_dir, os.path.join(self.logdir, 'run'))
    self.assertEqual(store.seeds(self.run_dir), [0, 1])
    shapes = agent_lib.ExpertAgent(4 * testing.TINY_OBS_DIM + 6, 6, 4,
                                   HIDDEN).param_shapes()
    params = {}
    for seed in (0, 1):
      self.assertEqual(store.updates(self.run_dir, seed), [2, 3])
      for update in (2, 3):
        params[seed, update] = checkpoints.load_checked(
            store.policy_path(self.run_dir, seed, update, LEVEL_NAME),
            shapes)
        stats = store.read_stats(store.stats_path(self.run_dir, seed,
                                                  update, LEVEL_NAME))
        for k in (store.SOLVED, store.RETURNS, store.LENGTHS, 'episodes'):
          self.assertIn(k, stats)
        self.assertBetween(stats[store.SOLVED], 0.0, 1.0)
        self.assertEqual(stats['update'], update)
    # Seeds differ; training moves the parameters between checkpoints.
    w = lambda s, u: params[s, u]['agent/actor_0']['w']
    self.assertFalse(np.allclose(w(0, 2), w(1, 2)))
    self.assertFalse(np.allclose(w(0, 2), w(0, 3)))
    with open(os.path.join(self.run_dir, 'config.json')) as f:
      info = json.load(f)
    self.assertEqual(info['levels'], [testing.TINY_LEVEL])
    self.assertEqual(info['obs_history'], 4)
    self.assertEqual(info['train']['num_seeds'], 2)

  def test_tensorboard_and_progress(self):
    scalars = summary.read_scalars(os.path.join(self.run_dir, 'tb'))
    for tag in (f'{LEVEL_NAME}/seed_0/solved', f'{LEVEL_NAME}/seed_1/return',
                f'{LEVEL_NAME}/seed_1/loss', f'{LEVEL_NAME}/mean/solved',
                'env_steps_per_second'):
      self.assertIn(tag, scalars)
    # Logged against environment steps per seed: updates 2 and 3 of 4x8.
    self.assertEqual([s for s, _ in scalars[f'{LEVEL_NAME}/seed_0/solved']],
                     [64, 96])
    progress = [l for l in self.logs if 'env steps/s' in l]
    self.assertLen(progress, 2)
    self.assertIn('left ~', progress[0])
    self.assertIn('update 3/3', progress[-1])

  def test_finished_run_is_not_trained_again(self):
    before = open(store.policy_path(self.run_dir, 0, 3, LEVEL_NAME),
                  'rb').read()
    logs = []
    train.train(tiny_train_config(self.logdir), log=logs.append)
    self.assertTrue(any('already trained to update 3' in l for l in logs))
    after = open(store.policy_path(self.run_dir, 0, 3, LEVEL_NAME),
                 'rb').read()
    self.assertEqual(before, after)

  def test_resumed_run_equals_uninterrupted_run(self):
    # Stopped after update 2 (as if interrupted), then run to update 3 (the
    # class's run, uninterrupted): the same checkpoints, bit for bit.
    logdir = os.path.join(self.root, 'resumed')
    train.train(tiny_train_config(logdir, num_updates=2), log=lambda _: None)
    logs = []
    run_dir = train.train(tiny_train_config(logdir), log=logs.append)
    self.assertTrue(any('resuming from update 2' in l for l in logs))
    for seed in (0, 1):
      for update in (2, 3):
        with open(store.policy_path(run_dir, seed, update, LEVEL_NAME),
                  'rb') as f, open(store.policy_path(
                      self.run_dir, seed, update, LEVEL_NAME), 'rb') as g:
          self.assertEqual(f.read(), g.read(), (seed, update))
    # Other settings are refused, naming the first difference.
    with self.assertRaisesRegex(ValueError,
                                'other settings \\(learning_rate'):
      train.train(tiny_train_config(logdir, learning_rate=1e-3),
                  log=lambda _: None)

  def test_later_runs_reuse_the_traced_programs(self):
    # Another run on the same level and sizes (other logdir, seed and
    # learning rate) reuses the class's run's trainer and jitted update:
    # Kinetix's step is traced once per process, not once per run.
    key = train._program_key(envs.load_levels((testing.TINY_LEVEL,)),
                             ppo.Settings.from_config(
                                 tiny_train_config(self.logdir)),
                             tiny_train_config(self.logdir))
    trainer, compiled = train._PROGRAMS[key]
    train.train(tiny_train_config(os.path.join(self.root, 'again'), seed=7,
                                  learning_rate=1e-3), log=lambda _: None)
    self.assertIs(train._PROGRAMS[key][0], trainer)
    (_, (init, update)), = compiled.values()
    self.assertEqual((init._cache_size(), update._cache_size()), (1, 1))
    # Another level of the same physics and sizes: its states are
    # arguments, so the same programs run it.
    other = 's/h1_thrust_over_ball.json'
    self.assertNotEqual(other, testing.TINY_LEVEL)
    run_dir = train.train(tiny_train_config(
        os.path.join(self.root, 'other_level'), levels=other,
        num_updates=1), log=lambda _: None)
    self.assertIs(train._PROGRAMS[key][0], trainer)
    self.assertEqual((init._cache_size(), update._cache_size()), (1, 1))
    self.assertTrue(os.path.exists(store.policy_path(
        run_dir, 0, 1, envs.level_name(other))))
    # Other sizes are other programs: a new trainer.
    bigger = tiny_train_config(self.logdir, hidden_dim=2 * HIDDEN)
    self.assertNotEqual(train._program_key(
        envs.load_levels((testing.TINY_LEVEL,)), ppo.Settings.from_config(bigger),
        bigger), key)

  def test_corrupt_resume_state_names_the_file(self):
    logdir = os.path.join(self.root, 'corrupt')
    run_dir = train.train(tiny_train_config(logdir, num_updates=2),
                          log=lambda _: None)
    path = os.path.join(run_dir, train.RESUME_DIR, 'levels_0-0.pkl')
    with open(path, 'wb') as f:
      f.write(b'not a pickle')
    with self.assertRaisesRegex(ValueError, f'{path} is unreadable.*delete'):
      train.train(tiny_train_config(logdir), log=lambda _: None)
    with open(path, 'wb') as f:  # Readable, but not this run's learners.
      f.write(pickle.dumps(2) + pickle.dumps([np.zeros(3)]))
    with self.assertRaisesRegex(ValueError,
                                f'{path} does not match.*delete'):
      train.train(tiny_train_config(logdir), log=lambda _: None)

  def test_nan_stops_the_run_with_a_clear_error(self):
    logdir = os.path.join(self.root, 'nan')
    with self.assertRaisesRegex(
        FloatingPointError,
        f'Non-finite .* update 2 for {LEVEL_NAME} seed 0, {LEVEL_NAME} '
        'seed 1.*learning_rate'):
      train.train(tiny_train_config(logdir, learning_rate=float('nan')),
                  log=lambda _: None)
    self.assertEqual(store.seeds(os.path.join(logdir, 'run')), [])

  def test_bad_shaping_is_an_error(self):
    with self.assertRaisesRegex(ValueError, 'shaping'):
      train.train(tiny_train_config(self.root, shaping='dense'))

  # -- data generation --------------------------------------------------------

  def test_npz_has_the_spec_layout(self):
    self.assertEqual(self.data_paths,
                     [os.path.join(self.run_dir, 'data',
                                   LEVEL_NAME + '.npz')])
    path = self.data_paths[0]
    with np.load(path) as z:
      arrays = {k: z[k] for k in z.files}
    # The DESIGN §10 arrays and the settings record (resuming).
    self.assertEqual(sorted(arrays),
                     sorted(data_lib.KEYS + (level_files.META,)))
    t, e = 5, 8
    self.assertEqual(arrays['obs'].shape, (t, e, testing.TINY_OBS_DIM))
    self.assertEqual(arrays['obs'].dtype, np.float32)
    self.assertEqual(arrays['action'].shape, (t, e, 6))
    self.assertEqual(arrays['action'].dtype, np.float32)
    for k in ('done', 'solved', 'return_', 'length'):
      self.assertEqual(arrays[k].shape, (t, e), k)
    self.assertEqual(arrays['done'].dtype, np.bool_)
    # Actions as the expert gave them (clipped, no environment noise).
    act = arrays['action']
    self.assertLessEqual(np.abs(act[..., :4]).max(), agent_lib.ACTION_LIMIT)
    self.assertGreaterEqual(act[..., 4:].min(), agent_lib.SIGMOID_FLOOR)
    # Lengths count up within an episode and restart after a done.
    length = arrays['length']
    np.testing.assert_array_equal(length[0], 1)
    for i in range(1, t):
      want = np.where(arrays['done'][i - 1], 1, length[i - 1] + 1)
      np.testing.assert_array_equal(length[i], want)
    self.assertTrue(np.all(arrays['solved'] <= arrays['done']))
    # Observations are plain ones, different across steps.
    self.assertFalse(np.allclose(arrays['obs'][0], arrays['obs'][-1]))
    # rtc.common.env.data reads it, memory-mapping the observations.
    ds = data_lib.load_level_dataset(path, chunk_size=8)
    self.assertIsInstance(ds.obs, np.memmap)
    self.assertEqual(ds.num_examples, t * e)
    obs, chunk = ds.batch(np.array([0, 7, 39]))
    np.testing.assert_array_equal(obs[2], arrays['obs'][4, 7])
    self.assertEqual(chunk.shape, (3, 8, 6))
    self.assertTrue(any(' episodes, mean return ' in l
                        for l in self.gen_logs), self.gen_logs)
    self.assertTrue(any('env steps/s' in l for l in self.gen_logs))
    # No temporary files are left beside the output.
    self.assertEqual(os.listdir(os.path.dirname(path)),
                     [LEVEL_NAME + '.npz'])

  def test_reference_format_run_gives_the_same_data(self):
    ref = to_reference_format(self.run_dir, os.path.join(self.root, 'ref'))
    self.assertFalse(os.path.exists(os.path.join(ref, 'config.json')))
    out = generate_data.generate(tiny_data_config(ref), log=lambda _: None)
    with np.load(out[0]) as a, np.load(self.data_paths[0]) as b:
      for k in data_lib.KEYS:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)

  def test_bad_inputs_name_the_file(self):
    with self.assertRaisesRegex(ValueError, 'run_path is required'):
      generate_data.generate(tiny_data_config(''))
    missing = os.path.join(self.root, 'missing')
    with self.assertRaisesRegex(FileNotFoundError, f'{missing} does not'):
      generate_data.generate(tiny_data_config(missing))
    empty = os.path.join(self.root, 'empty')
    os.makedirs(os.path.join(empty, 'seed_0'))
    with self.assertRaisesRegex(FileNotFoundError, 'no expert checkpoints'):
      generate_data.generate(tiny_data_config(empty))
    bad = os.path.join(self.root, 'corrupt')
    shutil.copytree(self.run_dir, bad, ignore=shutil.ignore_patterns('data'))
    for seed in (0, 1):
      for update in (2, 3):
        with open(store.policy_path(bad, seed, update, LEVEL_NAME),
                  'wb') as f:
          f.write(b'not a pickle')
    with self.assertRaisesRegex(ValueError, r'policies/.*\.pkl is corrupt'):
      generate_data.generate(tiny_data_config(bad), log=lambda _: None)
    os.remove(store.stats_path(bad, 1, 3, LEVEL_NAME))
    with self.assertRaisesRegex(FileNotFoundError, r'stats/.*\.json not'):
      generate_data.generate(tiny_data_config(bad), log=lambda _: None)


if __name__ == '__main__':
  absltest.main()
