"""Tests of the shared training loop (rtc.common.bc.train): resume, fine-tuning
from `load_dir`, NaN stop.

The loop is the same for every policy family, so these tests train the toy
family of rtc.family_test (a one-layer regression of the chunk):
compiling it costs a fraction of a flow or DD model. Flow's and DD's own
end-to-end runs through the loop are in rtc/flow and rtc/dd.
"""

import os
import pickle
import shutil

from absl.testing import absltest
import numpy as np

from rtc.common.base import cache
from rtc.common.bc import checkpoints
from rtc.common.bc import runs
from rtc.common.bc import summary
from rtc.common.bc import train
from rtc.common.env import envs
from rtc.common.testlib import testing
from rtc.common.testlib import toy_family

LEVEL_NAME = 'worlds_s_h0_weak_thrust'


def _train(expert, logdir, logs=None, **overrides):
  c = toy_family.toy_train_config(expert, logdir, **overrides)
  log = logs.append if logs is not None else lambda _: None
  return train.train_and_evaluate(c, toy_family.make_toy_policy, 'toy',
                                  log=log)


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


def _state(run_dir, epoch):
  with open(os.path.join(run_dir, str(epoch), train.TRAIN_STATE), 'rb') as f:
    return pickle.load(f)


def _write_state(run_dir, epoch, state):
  with open(os.path.join(run_dir, str(epoch), train.TRAIN_STATE), 'wb') as f:
    pickle.dump(state, f)


class TrainLoopTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root, cls.expert = testing.temp_expert_run(cls)
    # Two epochs of 8 steps, uninterrupted; warm-up over 10 steps.
    cls.run_dir = _train(cls.expert, os.path.join(cls.root, 'logs'),
                         num_epochs=2, warmup_steps=10)

  def _copy_run(self, name, epochs=(0, 1)):
    """A copy of the class's run holding only `epochs`."""
    run = os.path.join(self.root, name, 'run')
    shutil.copytree(self.run_dir, run)
    for e in {0, 1} - set(epochs):
      shutil.rmtree(os.path.join(run, str(e)))
    return run

  def test_learning_rate_follows_the_warm_up(self):
    scalars = summary.read_scalars(os.path.join(self.run_dir, 'tb'))
    lr = dict(scalars['train/learning_rate'])
    # Logged every 4 steps: 1e-2 * step / 10 during the warm-up, then flat.
    self.assertEqual(sorted(lr), [4, 8, 12, 16])
    np.testing.assert_allclose([lr[s] for s in (4, 8, 12, 16)],
                               [4e-3, 8e-3, 1e-2, 1e-2], rtol=1e-6)

  def test_resume_continues_from_last_epoch(self):
    run = self._copy_run('resume')
    # Simulate an interruption during epoch 1: its train_state is missing.
    os.remove(os.path.join(run, '1', train.TRAIN_STATE))
    logs = []
    _train(self.expert, os.path.dirname(run), logs, num_epochs=3,
           warmup_steps=10)
    self.assertTrue(any('resuming' in l and 'after epoch 0' in l
                        for l in logs), logs)
    self.assertEqual(checkpoints.epoch_dirs(run), [0, 1, 2])
    self.assertEqual(_state(run, 2)['step'], 3 * _state(self.run_dir,
                                                          0)['step'])

  def test_resumed_run_equals_uninterrupted_run(self):
    # Stopped after epoch 0, then resumed: epoch 1 is the same, bit for bit
    # (parameters, optimiser state and the batcher's shuffles restored).
    run = self._copy_run('resumed', epochs=(0,))
    _train(self.expert, os.path.dirname(run), num_epochs=2, warmup_steps=10)
    self.assertEqual(
        _read(checkpoints.policy_path(run, 1, LEVEL_NAME)),
        _read(checkpoints.policy_path(self.run_dir, 1, LEVEL_NAME)))

  def test_older_padded_train_state_still_loads(self):
    # Earlier versions saved the optimiser leaves with the device padding
    # [P, ...] (pads copy the last level); they resume as before.
    run = self._copy_run('padded', epochs=(0,))
    state = _state(run, 0)
    state['opt_state'] = [np.concatenate([x, x[-1:]])
                          for x in state['opt_state']]
    _write_state(run, 0, state)
    _train(self.expert, os.path.dirname(run), num_epochs=2, warmup_steps=10)
    self.assertEqual(
        _read(checkpoints.policy_path(run, 1, LEVEL_NAME)),
        _read(checkpoints.policy_path(self.run_dir, 1, LEVEL_NAME)))

  def test_train_state_of_another_optimiser_is_refused(self):
    run = self._copy_run('other', epochs=(0,))
    path = os.path.join(run, '0', train.TRAIN_STATE)
    good = _state(run, 0)
    i = max(range(len(good['opt_state'])),
            key=lambda j: good['opt_state'][j].ndim)
    for change, message in (
        (lambda x: x[..., :1], f'array {i} is float32'),
        (lambda x: x.astype(np.float64), f'array {i} is float64'),
    ):
      state = dict(good, opt_state=list(good['opt_state']))
      state['opt_state'][i] = change(state['opt_state'][i])
      _write_state(run, 0, state)
      with self.assertRaisesRegex(
          ValueError, f'{path} does not match this optimiser: {message}.*'
          'start a new --config.run_name'):
        _train(self.expert, os.path.dirname(run), num_epochs=2)
    _write_state(run, 0, {'step': 8})
    with self.assertRaisesRegex(ValueError,
                                f'{path} is not a training state'):
      _train(self.expert, os.path.dirname(run), num_epochs=2)
    with open(path, 'wb') as f:
      f.write(b'truncated')
    with self.assertRaisesRegex(ValueError, f'{path} is unreadable'):
      _train(self.expert, os.path.dirname(run), num_epochs=2)

  def test_load_dir_starts_from_saved_weights(self):
    # Learning rate and weight decay 0: the weights stay those loaded.
    run = _train(self.expert, os.path.join(self.root, 'ft'),
                 learning_rate=0.0, weight_decay=0.0,
                 load_dir=os.path.join(self.run_dir, '1'))
    a = checkpoints.load_params(checkpoints.policy_path(run, 0, LEVEL_NAME))
    b = checkpoints.load_params(checkpoints.policy_path(self.run_dir, 1,
                                                        LEVEL_NAME))
    self.assertEqual(sorted(a), sorted(b))
    for k in b:
      for n in b[k]:
        np.testing.assert_array_equal(a[k][n], b[k][n])
    # A fresh start differs from the saved weights.
    run = _train(self.expert, os.path.join(self.root, 'fresh'),
                 learning_rate=0.0, weight_decay=0.0)
    fresh = checkpoints.load_params(checkpoints.policy_path(run, 0,
                                                            LEVEL_NAME))
    self.assertFalse(np.array_equal(fresh['toy_out']['w'],
                                    b['toy_out']['w']))

  def test_worlds_dir_defaults_to_the_expert_runs(self):
    # Levels from another folder: the expert run's config.json names it,
    # and training with worlds_dir '' finds them there, as data generation
    # and evaluation do.
    worlds = os.path.join(self.root, 'own_worlds')
    os.makedirs(os.path.join(worlds, 's'))
    shutil.copy(os.path.join(envs.package_worlds_dir(), testing.TINY_LEVEL),
                os.path.join(worlds, 's', 'own_level.json'))
    expert = testing.make_expert_run(os.path.join(self.root, 'own_expert'),
                                     level_ids=('s/own_level.json',))
    runs.write_run_config(expert, {'kind': 'expert', 'worlds_dir': worlds})
    run = _train(expert, os.path.join(self.root, 'own_logs'), num_epochs=1)
    info = runs.read_run_config(run)
    self.assertEqual(info['worlds_dir'], worlds)
    self.assertEqual(info['level_names'], ['worlds_s_own_level'])
    # Without that record the level is not found, with one error line.
    os.remove(os.path.join(expert, runs.CONFIG_FILE))
    with self.assertRaisesRegex(FileNotFoundError, 'named worlds_s_own_level'
                                '.*set --config.worlds_dir'):
      _train(expert, os.path.join(self.root, 'own_logs2'), num_epochs=1)

  def test_nan_loss_stops_and_keeps_checkpoint(self):
    expert = os.path.join(self.root, 'nan_expert')
    testing.make_expert_run(expert)
    path = os.path.join(expert, 'data', LEVEL_NAME + '.npz')
    arrays = dict(np.load(path))
    arrays['obs'][:] = np.nan
    np.savez(path, **arrays)
    run = self._copy_run('nan')
    before = _read(checkpoints.policy_path(run, 1, LEVEL_NAME))
    with self.assertRaisesRegex(FloatingPointError,
                                f'Non-finite loss.*{LEVEL_NAME}.*run/1'):
      _train(expert, os.path.dirname(run), num_epochs=3, warmup_steps=10)
    self.assertEqual(before, _read(checkpoints.policy_path(run, 1,
                                                           LEVEL_NAME)))
    self.assertFalse(os.path.exists(os.path.join(run, '2')))


if __name__ == '__main__':
  absltest.main()
