r"""One prepared check of rtc on a GPU: `tools/gpu_check.sh` (<= 8 minutes).

  tools/gpu_check.sh [--out=docs/gpu_check.md]   # paper sizes, on a GPU
  tools/gpu_check.sh --smoke                      # tiny sizes (CI, CPU)
  tools/gpu_check.sh --memory_only                # XLA's memory analysis at
                                                  # paper sizes (runs on CPU)

Prints one table, measured in one run:

* a flow and a DD training step at paper size (12 levels vmapped and sharded
  over the devices, batch 512, the 256-channel 4-layer mixer), ms per step;
* `action` and `realtime_action` latency at batch 1 and 2048 (5 steps, d=2,
  s=H-3), DD with both forms of its sampling reductions
  (rtc.dd.sampling_ops: `cpu` tuned vs `plain`);
* Kinetix environment steps/s on the 12 paper levels at 2048 envs each
  (random actions);
* `--ppo_seconds` (180) of paper-preset PPO on 2 paper levels (8 seeds),
  its progress line (solve rate per level) printed after every update;
* the device memory XLA reports (`compiled.memory_analysis()`: arguments +
  outputs + temporaries - aliased) for the training steps and a `realtime`
  evaluation rollout of the 12 levels at 2048 envs.

The paper levels come from `--worlds_dir`, a folder holding all 12 as
`l/*.json` (docs/scaling.md); without it, the 8 that kinetix-env ships. `--smoke` runs the same code on 2
small levels with a tiny model, batch 8, 4 envs and 2 PPO updates.
"""

import dataclasses
import os
import time

from absl import flags
import jax
import numpy as np

from configs import dd as dd_config
from configs import expert as expert_config
from configs import flow as flow_config
from rtc.bench import timing
from rtc.common.base import paths
from rtc.common.base import validate
from rtc.common.bc import checkpoints
from rtc.common.bc import sharding
from rtc.common.bc import sweep
from rtc.common.bc import train
from rtc.common.cli import cli
from rtc.common.env import envs
from rtc.common.env import rollout
from rtc.dd import model as dd_model
from rtc.dd import sampling_ops
from rtc.flow import model as flow_model

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny sizes (CPU, CI).')
_MEMORY_ONLY = flags.DEFINE_bool(
    'memory_only', False, 'Only compile and report XLA\'s memory analysis.')
_OUT = flags.DEFINE_string('out', '', 'Also write the table (Markdown) here.')
_WORLDS = flags.DEFINE_string('worlds_dir', '',
                              'Folder of the paper levels (l/*.json); empty: '
                              'the 8 kinetix-env ships.')
_PPO_SECONDS = flags.DEFINE_float('ppo_seconds', 180.0,
                                  'Seconds of PPO (stops after an update).')

SMOKE_LEVELS = ('s/h0_weak_thrust.json', 's/h1_thrust_over_ball.json')
PPO_LEVELS = 2


@dataclasses.dataclass
class Sizes:
  levels: tuple
  worlds_dir: str
  batch: int
  latency_batches: tuple
  num_envs: int
  env_steps: int
  train_steps: int
  smoke: bool


def sizes(smoke: bool, worlds_dir: str) -> Sizes:
  if smoke:
    return Sizes(SMOKE_LEVELS, '', 8, (1, 4), 4, 4, 2, True)
  worlds = paths.resolve(worlds_dir) if worlds_dir else ''
  if worlds and os.path.isdir(os.path.join(worlds, 'l')):
    return Sizes(envs.parse_levels('paper'), worlds, 512, (1, 2048), 2048,
                 64, 20, False)
  return Sizes(envs.parse_levels('paper_packaged'), '', 512, (1, 2048), 2048,
               64, 20, False)


def model_config(kind: str, smoke: bool):
  c = (flow_config if kind == 'flow' else dd_config).get_config()
  if smoke:
    c.model.channel_dim, c.model.channel_hidden_dim = 16, 32
    c.model.token_hidden_dim, c.model.num_layers = 8, 1
  return c


def memory_bytes(compiled) -> int:
  m = compiled.memory_analysis()
  return int(m.argument_size_in_bytes + m.output_size_in_bytes +
             m.temp_size_in_bytes - m.alias_size_in_bytes)


def gib(n: int) -> str:
  return f'{n / 2**30:.2f} GiB' if n >= 2**24 else f'{n / 2**20:.2f} MiB'


def check_train_step(kind, make_policy, sz, levels, rows, memory_only):
  """A training step of every level at once: ms/step and memory."""
  c = model_config(kind, sz.smoke)
  env = envs.BatchedEnv.for_levels(levels, 1)
  obs_dim = env.plain_obs_dim(levels.level(0))
  policy = make_policy(c.model, obs_dim, env.action_dim)
  n = len(levels)
  shard = sharding.LevelSharding(n)
  keys = jax.random.split(jax.random.key(0), n)
  params = shard.pad(checkpoints.to_numpy(jax.jit(jax.vmap(policy.init))(
      keys)))
  opt = train.make_optimizer(c)
  opt_state = jax.jit(jax.vmap(opt.init))(params)
  rng = np.random.default_rng(0)
  obs = shard.pad(rng.normal(size=(n, sz.batch, obs_dim)).astype(np.float32))
  act = shard.pad(np.tanh(rng.normal(
      size=(n, sz.batch, policy.chunk_size, env.action_dim))).astype(
          np.float32))
  key_data = shard.pad(np.asarray(jax.random.key_data(keys)))
  step = shard.map(train.make_train_step(policy, opt), in_axes=(0,) * 5,
                   donate_argnums=(0, 1))
  compiled = step.lower(params, opt_state, key_data, obs, act).compile()
  what = f'{kind} training step ({n} levels x batch {sz.batch})'
  rows.append((f'{what}: device memory', gib(memory_bytes(compiled))))
  if memory_only:
    return
  params, opt_state, _ = compiled(params, opt_state, key_data, obs, act)
  jax.block_until_ready(params)
  t0 = time.perf_counter()
  for _ in range(sz.train_steps):
    params, opt_state, metrics = compiled(params, opt_state, key_data, obs,
                                          act)
  jax.block_until_ready(metrics)
  per = (time.perf_counter() - t0) / sz.train_steps
  rows.append((what, f'{per * 1e3:.1f} ms/step'))


def check_latency(kind, make_policy, sz, obs_dim, action_dim, rows):
  c = model_config(kind, sz.smoke)
  policy = make_policy(c.model, obs_dim, action_dim)
  params = jax.jit(policy.init)(jax.random.key(0))
  h = policy.chunk_size
  variants = [('', None)] if kind == 'flow' else [(' (cpu-tuned ops)', 'cpu'),
                                                  (' (plain ops)', 'plain')]
  for batch in sz.latency_batches:
    k1, k2 = jax.random.split(jax.random.key(batch))
    obs = jax.random.normal(k1, (batch, obs_dim))
    prev = jax.numpy.tanh(jax.random.normal(k2, (batch, h, action_dim)))
    for label, ops in variants:
      fns = {
          'action': lambda p, k, o, y: policy.action(p, k, o, 5),
          'realtime_action': lambda p, k, o, y: policy.realtime_action(
              p, k, o, 5, y, 2, h - 3, 'exp', 5.0)}
      for name, fn in fns.items():
        if ops is None:
          jitted = jax.jit(fn)
          t = timing.time_fn(jitted, params, jax.random.key(1), obs, prev,
                             repeats=10 if batch < 64 else 3)
        else:
          with sampling_ops.use(ops):
            jitted = jax.jit(fn)
            t = timing.time_fn(jitted, params, jax.random.key(1), obs, prev,
                               repeats=10 if batch < 64 else 3)
        rows.append((f'{kind} {name}{label}, batch {batch}', timing.fmt(t)))


def check_env(sz, levels, rows):
  n = len(levels)
  env = envs.BatchedEnv.for_levels(levels, sz.num_envs)
  shard = sharding.LevelSharding(n)

  def run(key_data, level):
    key = jax.random.wrap_key_data(key_data)
    key, reset_key = jax.random.split(key)
    _, state = env.reset(reset_key, level)

    def body(carry, _):
      key, state = carry
      key, k_act, k_step = jax.random.split(key, 3)
      action = jax.random.uniform(k_act, (sz.num_envs, env.action_dim),
                                  minval=-1, maxval=1)
      _, state, reward, _, _ = env.step(k_step, state, action, level)
      return (key, state), reward.sum()

    _, rewards = jax.lax.scan(body, (key, state), None, length=sz.env_steps)
    return rewards.sum()

  fn = shard.map(run, in_axes=(0, 0))
  keys = shard.pad(np.asarray(jax.random.key_data(
      jax.random.split(jax.random.key(0), n))))
  states = shard.pad(levels.states)
  t = timing.time_fn(fn, keys, states, repeats=3)
  rate = n * sz.num_envs * sz.env_steps / t
  rows.append((f'Kinetix env steps ({n} levels x {sz.num_envs} envs)',
               f'{rate:,.0f} steps/s'))


def check_eval_memory(sz, levels, rows):
  c = model_config('flow', sz.smoke)
  env = envs.BatchedEnv.for_levels(levels, 1)
  policy = flow_model.make_policy(c.model, env.plain_obs_dim(levels.level(0)),
                                  env.action_dim)
  n = len(levels)
  shard = sharding.LevelSharding(n)
  params = shard.pad(checkpoints.to_numpy(jax.jit(jax.vmap(policy.init))(
      jax.random.split(jax.random.key(0), n))))
  keys = shard.pad(np.asarray(jax.random.key_data(
      jax.random.split(jax.random.key(1), n))))
  fn = sweep.make_evaluator(policy, levels, rollout.Method('realtime'),
                            sz.num_envs, 5, shard)
  compiled = fn.lower(params, params, keys, shard.pad(levels.states), 2,
                      3).compile()
  rows.append((f'flow realtime evaluation ({n} levels x {sz.num_envs} '
               'envs): device memory', gib(memory_bytes(compiled))))


class _TimeUp(Exception):
  pass


def check_ppo(sz, worlds_dir, seconds, rows):
  from rtc.expert import train as expert_train  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  c = expert_config.get_config('paper')
  c.levels = ','.join(sz.levels[:PPO_LEVELS])
  c.worlds_dir = worlds_dir
  c.parallel_levels = 0
  c.save_every = 1
  c.num_updates = 100000
  if sz.smoke:
    c.num_seeds, c.num_envs, c.num_steps, c.num_updates = 1, 4, 8, 2
    c.num_minibatches, c.update_epochs, c.hidden_dim = 2, 1, 16
  c.logdir = tempfile.mkdtemp(prefix='rtc-gpu-check-')
  c.run_name = 'ppo'
  t0 = time.time()
  lines = []

  def log(line):
    print(line, flush=True)
    lines.append(line)
    if '| update ' in line and time.time() - t0 > seconds:
      raise _TimeUp()

  try:
    expert_train.train(c, log=log)
  except _TimeUp:
    pass
  progress = [l for l in lines if 'solved' in l]
  rows.append((f'PPO, paper preset, {PPO_LEVELS} levels x {c.num_seeds} '
               f'seeds, {time.time() - t0:.0f} s',
               progress[-1].split('|', 1)[-1].strip().replace('|', ';')
               if progress else
               'no update finished'))


def run(smoke: bool, memory_only: bool, worlds_dir: str, ppo_seconds: float,
        log=print) -> str:
  sz = sizes(smoke, worlds_dir)
  levels = envs.load_levels(sz.levels, sz.worlds_dir or None)
  env = envs.BatchedEnv.for_levels(levels, 1)
  obs_dim = env.plain_obs_dim(levels.level(0))
  rows = [('backend', f'{jax.default_backend()}: {jax.device_count()} x '
           f'{jax.devices()[0].device_kind}')]
  t0 = time.time()

  def done(n):  # Logs the last n rows with the time so far.
    for r in rows[-n:]:
      log(f'[gpu_check {time.time() - t0:.0f}s] {r[0]}: {r[1]}')

  for kind, make in (('flow', flow_model.make_policy),
                     ('dd', dd_model.make_policy)):
    check_train_step(kind, make, sz, levels, rows, memory_only)
    done(1 if memory_only else 2)
  check_eval_memory(sz, levels, rows)
  done(1)
  if not memory_only:
    for kind, make in (('flow', flow_model.make_policy),
                       ('dd', dd_model.make_policy)):
      n = len(rows)
      check_latency(kind, make, sz, obs_dim, env.action_dim, rows)
      done(len(rows) - n)
    check_env(sz, levels, rows)
    done(1)
    check_ppo(sz, sz.worlds_dir, ppo_seconds, rows)
    done(1)
  return timing.table(rows, ('check', 'result'))


def main(argv):
  del argv
  validate.check_flags({'ppo_seconds': validate.POSITIVE})
  t0 = time.time()
  table = run(_SMOKE.value, _MEMORY_ONLY.value, _WORLDS.value,
              _PPO_SECONDS.value)
  table += f'\n\n(total {time.time() - t0:.0f} s)\n'
  print(table, flush=True)
  if _OUT.value:
    checkpoints.atomic_write_bytes(paths.resolve(_OUT.value), table.encode())


if __name__ == '__main__':
  cli.run(main)
