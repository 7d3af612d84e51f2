r"""How fast DD learns beside flow: a synthetic regression (issue 13).

  bazel run //rtc/bench:dd_learning [-- --variants=seed,ordinal]

obs in R^32 ~ N(0, I), fresh every step; target chunk = 0.9 tanh(obs W)
reshaped to [8, 6] (W fixed, N(0, 1/32)); a 128-channel, 2-layer mixer;
Adam 1e-3; batch 256; 5 sampling steps. Prints, from one run, the mean
absolute error of `action` on 256 fresh observations after each of
`--steps` training steps, for flow and every DD variant (each DD checkpoint
decoded three ways: sample / expected_value / mode), the last loss, and the
wall time of a training step with its ratio to flow's: first, every
policy's step is timed in interleaved rounds of 50 steps (the median), so a
change of machine load while the variants train one after another does not
bias the ratios (`--learn=false` stops there). The goals: some DD variant <= 1.5x flow's MAE at 600 steps,
with a train step <= 1.3x flow's.
"""

import statistics
import time

from absl import flags
import jax
import jax.numpy as jnp
import optax

from rtc.bench import timing
from rtc.common.base import validate
from rtc.common.cli import cli
from rtc.dd import model as dd_model
from rtc.dd import ordinal
from rtc.flow import model as flow_model

OBS_DIM, HORIZON, ACTION_DIM = 32, 8, 6
MIXER = dict(channel_dim=128, channel_hidden_dim=256, token_hidden_dim=64,
             num_layers=2, action_chunk_size=HORIZON)
BATCH, EVAL_BATCH, NUM_STEPS, LEARNING_RATE, BLOCK = 256, 256, 5, 1e-3, 50

# name -> DD model options (on top of MIXER); 'flow' is always run first.
VARIANTS = {
    'seed': dict(num_bins=256),
    'seed_k64': dict(num_bins=64),
    'sigma1': dict(num_bins=256, target_sigma=1.0),
    'centre': dict(num_bins=256, centre_features=True),
    'head': dict(num_bins=256, ordinal_head=8),
    'ordinal': dict(num_bins=256, target_sigma=1.0, centre_features=True,
                    ordinal_head=8),
    'ordinal_k64': dict(num_bins=64, target_sigma=1.0, centre_features=True,
                        ordinal_head=8),
    'ordinal_k32': dict(num_bins=32, target_sigma=1.0, centre_features=True,
                        ordinal_head=8),
}

_STEPS = flags.DEFINE_list('steps', ['300', '600', '1200'],
                           'Training steps at which the MAE is measured.')
_VARIANTS = flags.DEFINE_list('variants', list(VARIANTS),
                              f'DD variants to run, of {list(VARIANTS)}.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of W, the data and the init.')
_TIMING_ROUNDS = flags.DEFINE_integer(
    'timing_rounds', 5, f'Rounds of {BLOCK} interleaved train steps per '
    'policy behind the step times (0: the training blocks\' median instead).')
_LEARN = flags.DEFINE_bool('learn', True,
                           'Train and measure MAE (false: step times only).')


def task(seed: int):
  """(sample(key, n) -> (obs [n, 32], chunk [n, 8, 6]))."""
  w = jax.random.normal(jax.random.key(seed + 1000),
                        (OBS_DIM, HORIZON * ACTION_DIM)) / OBS_DIM**0.5

  def sample(key, n):
    obs = jax.random.normal(key, (n, OBS_DIM))
    return obs, 0.9 * jnp.tanh(obs @ w).reshape(n, HORIZON, ACTION_DIM)

  return sample


def make(name: str):
  if name == 'flow':
    return flow_model.FlowPolicy(flow_model.ModelConfig(**MIXER), OBS_DIM,
                                 ACTION_DIM)
  return dd_model.make_policy(dict(MIXER, **VARIANTS[name]), OBS_DIM,
                              ACTION_DIM)


def make_train_step(policy, sample, seed):
  """(params, optimiser state, jitted step(params, state, key))."""
  opt = optax.adam(LEARNING_RATE)
  params = policy.init(jax.random.key(seed))

  @jax.jit
  def train_step(params, state, key):
    data_key, loss_key = jax.random.split(key)
    obs, chunk = sample(data_key, BATCH)
    loss, grads = jax.value_and_grad(policy.loss)(params, loss_key, obs,
                                                   chunk)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  return params, opt.init(params), train_step


def interleaved_step_times(steps: dict, rounds: int) -> dict:
  """{name: median seconds per step}: `rounds` rounds, each timing BLOCK
  steps of every policy in turn, so a change of machine load hits all."""
  times = {name: [] for name in steps}
  state = {name: fn[:2] for name, fn in steps.items()}
  for name, (params, opt_state, step) in steps.items():
    jax.block_until_ready(step(params, opt_state, jax.random.key(0)))
  for r in range(rounds):
    for name, (_, _, step) in steps.items():
      params, opt_state = state[name]
      t0 = time.perf_counter()
      for i in range(BLOCK):
        params, opt_state, loss = step(params, opt_state,
                                       jax.random.key(r * BLOCK + i))
      jax.block_until_ready(loss)
      times[name].append((time.perf_counter() - t0) / BLOCK)
      state[name] = (params, opt_state)
  return {name: statistics.median(t) for name, t in times.items()}


def train_and_measure(policy, sample, steps, seed, decodes=('sample',)):
  """{'mae': {(decode, step): MAE}, 'step_s': seconds, 'loss': last loss}."""
  params, state, train_step = make_train_step(policy, sample, seed)

  test_obs, test_chunk = sample(jax.random.key(seed + 2000), EVAL_BATCH)
  actions = {}
  for how in decodes:
    if how == 'sample':
      p = policy
    else:
      p = dd_model.make_policy(
          dict(vars(policy.config), decode=how), OBS_DIM, ACTION_DIM)
    actions[how] = jax.jit(
        lambda params, key, p=p: p.action(params, key, test_obs, NUM_STEPS))

  mae, block_times, loss, done = {}, [], None, 0
  keys = jax.random.split(jax.random.key(seed + 3000), max(steps))
  params, state, loss = jax.block_until_ready(
      train_step(params, state, keys[0]))  # Compiles.
  done = 1
  for target in sorted(steps):
    while done < target:
      n = min(BLOCK, target - done)
      t0 = time.perf_counter()
      for i in range(done, done + n):
        params, state, loss = train_step(params, state, keys[i])
      jax.block_until_ready(loss)
      if n == BLOCK:
        block_times.append((time.perf_counter() - t0) / n)
      done += n
    for how, fn in actions.items():
      out = fn(params, jax.random.key(seed + 4000))
      mae[(how, target)] = float(jnp.mean(jnp.abs(out - test_chunk)))
  return {'mae': mae, 'step_s': statistics.median(block_times),
          'loss': float(loss)}


def main(argv):
  del argv
  validate.check_flags({'steps': validate.COUNT, 'seed': validate.SEED,
                        'timing_rounds': validate.NON_NEGATIVE_INT})
  steps = sorted(int(s) for s in _STEPS.value)
  unknown = [v for v in _VARIANTS.value if v not in VARIANTS]
  if unknown:
    raise ValueError(f'--variants: unknown {unknown}; choose from '
                     f'{list(VARIANTS)}.')
  print(f'devices: {jax.devices()}', flush=True)
  sample = task(_SEED.value)
  names = ['flow'] + list(_VARIANTS.value)
  step_s = {}
  if _TIMING_ROUNDS.value:
    step_s = interleaved_step_times(
        {n: make_train_step(make(n), sample, _SEED.value) for n in names},
        _TIMING_ROUNDS.value)
    print('train step (interleaved): ' + ', '.join(
        f'{n} {timing.fmt(t)} ({t / step_s["flow"]:.2f}x flow)'
        for n, t in step_s.items()), flush=True)
  if not _LEARN.value:
    return
  results = {}
  for name in names:
    policy = make(name)
    decodes = ('sample',) if name == 'flow' else ordinal.DECODES
    t0 = time.perf_counter()
    results[name] = train_and_measure(policy, sample, steps, _SEED.value,
                                      decodes)
    r = results[name]
    r['step_s'] = step_s.get(name, r['step_s'])
    print(f'  {name}: ' + ', '.join(
        f'{how}@{s} {m:.3f}' for (how, s), m in sorted(r['mae'].items())) +
          f'; step {timing.fmt(r["step_s"])}; loss {r["loss"]:.3f} '
          f'({time.perf_counter() - t0:.0f} s)', flush=True)
  flow = results['flow']
  rows = []
  for name, r in results.items():
    opts = 'MSE, Euler' if name == 'flow' else ', '.join(
        f'{k}={v}' for k, v in VARIANTS[name].items())
    for how in sorted({h for h, _ in r['mae']}):
      row = [name if name == 'flow' else f'{name} ({how})', opts]
      row += [f'{r["mae"][(how, s)]:.3f}' for s in steps]
      ratio = r['mae'][(how, 600)] / flow['mae'][('sample', 600)] if (
          600 in steps) else float('nan')
      row += [f'{ratio:.2f}', timing.fmt(r['step_s']),
              f'{r["step_s"] / flow["step_s"]:.2f}']
      rows.append(row)
  print()
  print(timing.table(rows, ['policy (decode)', 'options'] +
                     [f'MAE @{s}' for s in steps] +
                     ['MAE@600 / flow', 'train step', 'step / flow']))


if __name__ == '__main__':
  cli.run(main)
