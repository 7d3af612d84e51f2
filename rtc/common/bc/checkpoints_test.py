"""Tests for rtc.common.bc.checkpoints."""

import os
import pickle
from unittest import mock

from absl.testing import absltest
import numpy as np

from rtc.common.bc import checkpoints


def _params():
  rng = np.random.default_rng(0)
  return {'flow/in_proj': {'w': rng.normal(size=(5, 3)).astype(np.float32),
                           'b': np.zeros(3, np.float32)},
          'flow/out_proj': {'w': rng.normal(size=(3, 2)).astype(np.float32)}}


def _reference_flow(num_layers=2, a=2, o=3, c=4, h=8):
  rng = np.random.default_rng(1)

  def lin(i, j, bias=True):
    return {'kernel': rng.normal(size=(i, j)).astype(np.float32),
            'bias': rng.normal(size=(j,)).astype(np.float32) if bias else None}

  return {
      'in_proj': lin(a + o, c),
      'time_mlp': {'layers': {0: lin(c, c), 2: lin(c, c)}},
      'mlp_stack': {i: {
          'token_mix_in': lin(h, 3, False), 'token_mix_out': lin(3, h, False),
          'channel_mix_in': lin(c, 5, False),
          'channel_mix_out': lin(5, c, False),
          'norm_1': {'scale': None, 'bias': None},
          'norm_2': {'scale': None, 'bias': None},
          'adaln_1': lin(c, 3 * c), 'adaln_2': lin(c, 3 * c)}
                    for i in range(num_layers)},
      'final_norm': {'scale': None, 'bias': None},
      'final_adaln': lin(c, 2 * c),
      'out_proj': lin(c, a),
  }


class CheckpointsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path

  def test_round_trip(self):
    path = checkpoints.policy_path(self.dir, 3, 'worlds_l_x')
    self.assertEqual(path, os.path.join(self.dir, '3', 'policies',
                                        'worlds_l_x.pkl'))
    checkpoints.save_params(path, _params())
    back = checkpoints.load_params(path)
    for k, v in _params().items():
      for n, x in v.items():
        np.testing.assert_array_equal(back[k][n], x)
    # A plain nested dict of numpy arrays (DESIGN §10).
    with open(path, 'rb') as f:
      raw = pickle.load(f)
    self.assertIsInstance(raw['flow/in_proj']['w'], np.ndarray)

  def test_atomic_write_keeps_old_file_on_failure(self):
    path = os.path.join(self.dir, 'p.pkl')
    checkpoints.save_params(path, _params())
    before = open(path, 'rb').read()
    with mock.patch.object(os, 'replace', side_effect=OSError('disk full')):
      with self.assertRaises(OSError):
        checkpoints.save_params(path, {'x': {'w': np.ones(2)}})
    self.assertEqual(open(path, 'rb').read(), before)
    self.assertEqual(sorted(os.listdir(self.dir)), ['p.pkl'])

  def test_errors(self):
    with self.assertRaisesRegex(FileNotFoundError, 'nope.pkl'):
      checkpoints.load_params(os.path.join(self.dir, 'nope.pkl'))
    corrupt = os.path.join(self.dir, 'corrupt.pkl')
    with open(corrupt, 'wb') as f:
      f.write(b'\x80\x04garbage')
    with self.assertRaisesRegex(ValueError, 'corrupt.pkl is corrupt'):
      checkpoints.load_params(corrupt)

  def test_shape_mismatch_names_parameter(self):
    path = os.path.join(self.dir, 'p.pkl')
    checkpoints.save_params(path, _params())
    expected = _params()
    expected['flow/in_proj']['w'] = np.zeros((7, 3), np.float32)
    with self.assertRaisesRegex(ValueError,
                                r'p.pkl: parameter flow/in_proj/w has shape '
                                r'\(5, 3\).*\(7, 3\)'):
      checkpoints.load_checked(path, expected)
    expected = _params()
    del expected['flow/out_proj']
    with self.assertRaisesRegex(ValueError, 'unexpected'):
      checkpoints.load_checked(path, expected)

  def test_reference_flow_is_converted(self):
    ref = _reference_flow()
    path = os.path.join(self.dir, 'ref.pkl')
    with open(path, 'wb') as f:
      pickle.dump(ref, f)
    params = checkpoints.load_params(path)
    np.testing.assert_array_equal(params['flow/in_proj']['w'],
                                  ref['in_proj']['kernel'])
    np.testing.assert_array_equal(params['flow/time_mlp_1']['b'],
                                  ref['time_mlp']['layers'][2]['bias'])
    np.testing.assert_array_equal(
        params['flow/block_1/adaln_2']['w'],
        ref['mlp_stack'][1]['adaln_2']['kernel'])
    self.assertNotIn('b', params['flow/block_0/token_mix_in'])
    self.assertLen(params, 1 + 2 + 2 * 6 + 2)

  def test_reference_expert_is_converted(self):
    rng = np.random.default_rng(0)
    layers = {i: {'kernel': rng.normal(size=(3, 3)).astype(np.float32),
                  'bias': np.zeros(3, np.float32)}
              for i in (0, 2, 4)}
    ref = {'actor': {'layers': layers}, 'critic': {'layers': layers},
           'logstd': np.zeros(2)}
    path = os.path.join(self.dir, 'expert.pkl')
    with open(path, 'wb') as f:
      pickle.dump(ref, f)
    params = checkpoints.load_params(path)
    self.assertEqual(sorted(params), ['agent', 'agent/actor_0',
                                      'agent/actor_1', 'agent/actor_2',
                                      'agent/critic_0', 'agent/critic_1',
                                      'agent/critic_2'])
    np.testing.assert_array_equal(params['agent/actor_2']['w'],
                                  layers[4]['kernel'])

  def test_epochs(self):
    for e in (0, 2, 10):
      os.makedirs(os.path.join(self.dir, str(e), 'policies'))
    os.makedirs(os.path.join(self.dir, 'tb'))
    self.assertEqual(checkpoints.epoch_dirs(self.dir), [0, 2, 10])
    self.assertEqual(checkpoints.resolve_epoch(self.dir, -1), 10)
    self.assertEqual(checkpoints.resolve_epoch(self.dir, 2), 2)
    with self.assertRaisesRegex(FileNotFoundError, 'Epoch 5'):
      checkpoints.resolve_epoch(self.dir, 5)
    with self.assertRaisesRegex(FileNotFoundError, 'does not exist'):
      checkpoints.epoch_dirs(os.path.join(self.dir, 'missing'))

  def test_resume_leaves_are_checked_leaf_by_leaf(self):
    path = os.path.join(self.dir, 'state.pkl')
    like = [np.zeros((2, 3), np.float32), np.zeros((2,), np.int32)]
    with open(path, 'wb') as f:
      f.write(pickle.dumps(7) + pickle.dumps(like))
    step, leaves = checkpoints.read_pickles(path, 2, 'fix it')
    self.assertEqual(step, 7)
    out = checkpoints.check_leaves(leaves, like, path, 'this state',
                                   'fix it')
    self.assertEqual([x.dtype for x in out], [np.float32, np.int32])
    # Same number of leaves, but another shape or dtype: refused by name.
    for bad in ([np.zeros((2, 4), np.float32), like[1]],
                [like[0], np.zeros((2,), np.float32)]):
      with self.assertRaisesRegex(
          ValueError, f'{path} does not match this state: array '
          f'{0 if bad[1] is like[1] else 1} is .*; fix it'):
        checkpoints.check_leaves(bad, like, path, 'this state', 'fix it')
    with self.assertRaisesRegex(ValueError, r'\(1 saved arrays, 2'):
      checkpoints.check_leaves(like[:1], like, path, 'this state', 'fix it')
    # `fit` turns an older layout (padded rows) into the current one.
    padded = [np.zeros((4, 3), np.float32), np.zeros((4,), np.int32)]
    out = checkpoints.check_leaves(padded, like, path, 'this state', 'fix',
                                   fit=lambda x, want: x[:2])
    self.assertEqual([x.shape for x in out], [(2, 3), (2,)])
    with open(path, 'wb') as f:
      f.write(b'not a pickle')
    with self.assertRaisesRegex(ValueError, f'{path} is unreadable.*fix it'):
      checkpoints.read_pickles(path, 2, 'fix it')


if __name__ == '__main__':
  absltest.main()
