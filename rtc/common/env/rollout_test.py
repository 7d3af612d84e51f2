"""Tests for rtc.common.env.rollout with a scripted policy and a fake environment.

The fake policy writes into every action where it came from: `action` gives
(obs_time, position) and the other methods give (1000 + obs_time, position),
and the fake environment logs every executed action, so the test can check
which chunk each executed action came from.
"""

from typing import NamedTuple

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import cache
from rtc.common.env import envs
from rtc.common.env import rollout

H = 8
EPISODE = 40
MAX_STEPS = 64


class FakeState(NamedTuple):
  t: jax.Array  # [N] global step.
  log: jax.Array  # [N, MAX_STEPS + H, 2] executed actions (-1 = none).
  stats: envs.EpisodeStats


class FakeEnv:
  num_envs = 3
  action_dim = 2

  def reset(self, key, level):
    del key, level
    n = self.num_envs
    state = FakeState(jnp.zeros(n, jnp.int32),
                      jnp.full((n, MAX_STEPS + H, 2), -1.0),
                      envs.EpisodeStats.zeros(n))
    return jnp.zeros((n, 1)), state

  def step(self, key, state, action, level):
    del key, level
    n = self.num_envs
    log = state.log.at[jnp.arange(n), state.t].set(action)
    t = state.t + 1
    done = (t % EPISODE) == 0
    reward = jnp.where(done, 1.0, 0.0)
    stats, _, _ = state.stats.update(reward, done, done)
    obs = t[:, None].astype(jnp.float32)
    return obs, FakeState(t, log, stats), reward, done, {}


class FakeConfig(NamedTuple):
  simulated_delay: int = 1


class FakePolicy:
  chunk_size = H
  config = FakeConfig()

  def _chunk(self, obs, offset):
    n = obs.shape[0]
    pos = jnp.broadcast_to(jnp.arange(H, dtype=jnp.float32), (n, H))
    src = jnp.broadcast_to(obs[:, :1] + offset, (n, H))
    return jnp.stack([src, pos], axis=-1)

  def action(self, params, key, obs, num_steps):
    del params, key, num_steps
    return self._chunk(obs, 0.0)

  def realtime_action(self, params, key, obs, *unused):
    del params, key, unused
    return self._chunk(obs, 1000.0)

  def bid_action(self, params, key, obs, *unused):
    return self.realtime_action(params, key, obs)

  def training_time_action(self, params, key, obs, *unused):
    return self.realtime_action(params, key, obs)


def expected_action(t, d, s):
  k, j = divmod(t, s)
  if j < d:
    return (0.0, j) if k == 0 else (1000.0 + (k - 1) * s, j + s)
  return (1000.0 + k * s, j)


TRACES = []


@jax.jit
def run(d, s):
  TRACES.append(1)
  state, steps = rollout.rollout_state(
      FakePolicy(), FakeEnv(), rollout.Method('realtime'), 1, None, None,
      jax.random.key(0), None, d, s, max_steps=MAX_STEPS)
  return state, steps


class MethodPolicy(FakePolicy):
  """Each method's chunks carry their own offset (OFFSETS)."""

  def realtime_action(self, params, key, obs, num_steps, prev_chunk, delay,
                      overlap, schedule, *unused):
    del params, key, num_steps, prev_chunk, delay, overlap, unused
    return self._chunk(obs, OFFSETS['hard_masking' if schedule == 'zeros'
                                    else 'realtime'])

  def bid_action(self, params, key, obs, *unused):
    return self._chunk(obs, OFFSETS['bid'])

  def training_time_action(self, params, key, obs, *unused):
    return self._chunk(obs, OFFSETS['training_time'])


OFFSETS = {'naive': 0.0, 'realtime': 1000.0, 'hard_masking': 2000.0,
           'bid': 3000.0, 'training_time': 4000.0}
SWITCH_TRACES = []


@jax.jit
def run_any(index, d, s):
  SWITCH_TRACES.append(1)
  state, _ = rollout.rollout_state(
      MethodPolicy(), FakeEnv(), tuple(rollout.Method(m) for m in OFFSETS),
      1, None, None, jax.random.key(0), None, d, s, max_steps=MAX_STEPS,
      method_index=index)
  return state


class RolloutTest(parameterized.TestCase):

  def test_a_traced_index_picks_the_method(self):
    # One program for every method: after the first chunk (from `action`),
    # action j >= d of cycle k comes from method `index`'s chunk.
    d, s = 1, 3
    for i, name in enumerate(OFFSETS):
      log = np.asarray(run_any(i, d, s).log)
      for t in range(s, 4 * s):
        k, j = divmod(t, s)
        if j >= d:
          np.testing.assert_array_equal(
              log[0, t], (OFFSETS[name] + k * s, j), err_msg=f'{name} t={t}')
    self.assertLen(SWITCH_TRACES, 1)
    # A one-method tuple is that method, with no switch.
    state, _ = rollout.rollout_state(
        MethodPolicy(), FakeEnv(), (rollout.Method('bid'),), 1, None, None,
        jax.random.key(0), None, d, s, max_steps=MAX_STEPS)
    self.assertEqual(float(state.log[0, s + d, 0]), OFFSETS['bid'] + s)

  @parameterized.parameters((0, 1), (1, 1), (1, 3), (2, 4), (3, 5), (0, 8),
                            (4, 4), (2, 3))
  def test_executes_the_right_actions(self, d, s):
    state, steps = run(d, s)
    steps = int(steps)
    log = np.asarray(state.log)
    # The loop stops once every first episode has ended (EPISODE steps).
    self.assertEqual(steps, -(-EPISODE // s) * s)
    for t in range(steps):
      for e in range(FakeEnv.num_envs):
        np.testing.assert_array_equal(log[e, t], expected_action(t, d, s),
                                      err_msg=f't={t} d={d} s={s}')
    np.testing.assert_array_equal(log[:, steps:], -1.0)  # Nothing beyond.
    metrics = envs.first_episode_metrics(state.stats)
    self.assertEqual(float(metrics['returned_episode_lengths']), EPISODE)
    self.assertEqual(float(metrics['returned_episode_solved']), 1.0)

  def test_one_compilation_for_all_delays_and_horizons(self):
    before = len(TRACES)
    for d, s in [(0, 2), (1, 2), (2, 6)]:
      run(d, s)
    self.assertLessEqual(len(TRACES) - before, 1)

  def test_every_method_dispatches(self):
    for name in rollout.METHODS:
      m = rollout.Method(name)
      chunk = rollout.next_chunk(FakePolicy(), m, None, None, None,
                                 jnp.zeros((2, 1)), 1, None, 1, 2)
      self.assertEqual(float(chunk[0, 0, 0]),
                       0.0 if name == 'naive' else 1000.0, name)

  def test_shift_chunk(self):
    chunk = jnp.arange(8.0)[None, :, None]
    np.testing.assert_array_equal(
        rollout.shift_chunk(chunk, 3)[0, :, 0], [3, 4, 5, 6, 7, 0, 0, 0])
    np.testing.assert_array_equal(rollout.shift_chunk(chunk, 8)[0, :, 0], 0)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, 'Unknown method'):
      rollout.Method('magic')
    with self.assertRaisesRegex(ValueError, 'schedule'):
      rollout.Method('realtime', schedule='cosine')
    with self.assertRaisesRegex(ValueError, 'max_guidance_weight must be'):
      rollout.Method('realtime', max_guidance_weight=-1.0)
    with self.assertRaisesRegex(ValueError, 'max_guidance_weight must be'):
      rollout.Method('realtime', max_guidance_weight=float('nan'))
    with self.assertRaisesRegex(ValueError, 'n_samples must be'):
      rollout.Method('bid', n_samples=0)
    with self.assertRaisesRegex(ValueError, 'bid_k must be'):
      rollout.Method('bid', bid_k=0)
    with self.assertRaisesRegex(ValueError, 's <= H - d'):
      rollout.check_delay_horizon(3, 6, 8)
    rollout.check_delay_horizon(4, 4, 8)


def setUpModule():
  cache.enable_compilation_cache()


if __name__ == '__main__':
  absltest.main()
