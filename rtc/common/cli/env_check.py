r"""Steps random actions in Kinetix levels and reports speed and outcomes.

The smallest real job rtc runs: it loads levels the way every rtc binary does
and drives the batched environment (noise, auto-replay, statistics).

  bazel run //rtc/common/cli:env_check -- --levels=s/h0_weak_thrust --num_envs=64
"""

import time

from absl import flags
import jax

from rtc.common.base import paths
from rtc.common.cli import cli
from rtc.common.env import envs

_LEVELS = flags.DEFINE_string(
    'levels', 's/h0_weak_thrust,m/h18_thrust_right_very_easy'.split(',')[0],
    'Comma-separated level ids under --worlds_dir, or paper/paper_packaged.')
_WORLDS_DIR = flags.DEFINE_string(
    'worlds_dir', '', 'Level directory; empty = the levels kinetix-env ships.')
_NUM_ENVS = flags.DEFINE_integer('num_envs', 64, 'Parallel environments.')
_NUM_STEPS = flags.DEFINE_integer('num_steps', 512, 'Steps per environment.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')


def main(argv):
  del argv
  levels = envs.load_levels(_LEVELS.value, paths.resolve(_WORLDS_DIR.value))
  env = envs.BatchedEnv.for_levels(levels, _NUM_ENVS.value)
  num_steps = _NUM_STEPS.value

  def rollout(key, level):
    obs, state = env.reset(key, level)

    def body(state, k):
      k1, k2 = jax.random.split(k)
      a = jax.random.uniform(k1, (env.num_envs, env.action_dim),
                             minval=-1.0, maxval=1.0)
      _, state, reward, done, info = env.step(k2, state, a, level)
      return state, (done, info['solved'])

    state, (done, solved) = jax.lax.scan(body, state,
                                         jax.random.split(key, num_steps))
    metrics = envs.first_episode_metrics(state.stats)
    metrics['episodes'] = done.sum()
    metrics['solved_episodes'] = solved.sum()
    return obs.shape[-1], metrics

  run = jax.jit(jax.vmap(rollout, in_axes=(None, 0)))
  print(f'{len(levels)} level(s) from {levels.paths[0]}...; '
        f'{env.num_envs} envs x {num_steps} steps; compiling...', flush=True)
  t0 = time.time()
  jax.block_until_ready(run(jax.random.key(_SEED.value), levels.states))
  t1 = time.time()
  _, metrics = jax.block_until_ready(
      run(jax.random.key(_SEED.value + 1), levels.states))
  t2 = time.time()
  steps = len(levels) * env.num_envs * num_steps
  print(f'compile+first run {t1 - t0:.1f}s; {steps / (t2 - t1):,.0f} env '
        'steps/s', flush=True)
  for i, name in enumerate(levels.names):
    print(f'{name}: obs_dim={env.obs_dim(levels.level(i))} '
          f'episodes={int(metrics["episodes"][i])} '
          f'solved={int(metrics["solved_episodes"][i])} first-episode '
          f'return={float(metrics["returned_episode_returns"][i]):.2f} '
          f'length={float(metrics["returned_episode_lengths"][i]):.1f}')


if __name__ == '__main__':
  cli.run(main)
