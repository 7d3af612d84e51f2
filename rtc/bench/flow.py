r"""Benchmark of the flow policy on this machine (paper sizes, O=679, A=6).

  bazel run //rtc/bench:flow

Prints, from one run:

1. Training step time at batch 512 (loss + gradient + AdamW), for
   * `nnx`: the same architecture in flax nnx, built as the earlier
     implementation builds it (rtc/bench/nnx_reference.py);
   * `haiku (reference layout)`: Haiku written the same way: hk.Linear and
     hk.LayerNorm, per-token conditioning, [x_t, obs] concatenated per token;
   * `haiku (rtc)`: rtc.flow.model as shipped;
   with each one's ratio to nnx, XLA's FLOP and byte estimates.
2. `action`, `realtime_action`, `bid_action` latency at batch 1 and 2048
   (5 steps, d=2, s=3, 16 BID samples) and realtime / action.

What closes the gap: the Haiku model written like the reference has the same
dot count and FLOPs as nnx but more memory traffic (XLA's estimate and the
op count below); rtc's model computes per-example conditioning once per
example instead of once per token (the adaLN and time-MLP matmuls shrink
H=8 fold) and applies the observation half of the input projection once per
example, which halves the FLOPs of a training step. See README.md for the
figures measured here.
"""

from absl import flags
import haiku as hk
import jax
import jax.numpy as jnp
import optax

from rtc.bench import common
from rtc.bench import nnx_reference
from rtc.bench import timing
from rtc.common import backbone
from rtc.common import cli

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '2048'],
                                 'Batch sizes for the sampling latencies.')
_TRAIN_BATCH = flags.DEFINE_integer('train_batch', 512,
                                    'Batch size of the training step.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed training steps.')

H = 8


def _reference_layout_haiku(config: backbone.MixerConfig, action_dim: int):
  """Haiku written like the reference (the first probe's model)."""
  c = config.channel_dim

  def ln(x):
    return hk.LayerNorm(-1, create_scale=False, create_offset=False,
                        eps=1e-6)(x)

  def net(obs, x_t, t):
    b = obs.shape[0]
    t = jnp.broadcast_to(t[:, None], (b, H))
    cond = jax.nn.swish(hk.Linear(c)(backbone.posemb_sincos(t, c)))
    cond = jax.nn.swish(hk.Linear(c)(cond))
    obs = jnp.broadcast_to(obs[:, None], (b, H, obs.shape[-1]))
    x = hk.Linear(c)(jnp.concatenate([x_t, obs], -1))
    for _ in range(config.num_layers):
      s1, b1, g1 = jnp.split(hk.Linear(3 * c, w_init=jnp.zeros)(cond), 3, -1)
      s2, b2, g2 = jnp.split(hk.Linear(3 * c, w_init=jnp.zeros)(cond), 3, -1)
      y = ln(x) * (1 + s1) + b1
      y = hk.Linear(config.token_hidden_dim, with_bias=False)(
          y.transpose(0, 2, 1))
      y = hk.Linear(H, with_bias=False)(jax.nn.gelu(y))
      x = x + g1 * y.transpose(0, 2, 1)
      y = ln(x) * (1 + s2) + b2
      y = hk.Linear(config.channel_hidden_dim, with_bias=False)(y)
      y = hk.Linear(c, with_bias=False)(jax.nn.gelu(y))
      x = x + g2 * y
    scale, shift = jnp.split(hk.Linear(2 * c, w_init=jnp.zeros)(cond), 2, -1)
    return hk.Linear(action_dim)(ln(x) * (1 + scale) + shift)

  return hk.without_apply_rng(hk.transform(net))


def _flow_loss(apply, params, rng, obs, action):
  noise_rng, time_rng = jax.random.split(rng)
  t = jax.random.uniform(time_rng, (obs.shape[0],))
  noise = jax.random.normal(noise_rng, action.shape)
  x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * action
  return jnp.mean(jnp.square(apply(params, obs, x_t, t) - (action - noise)))


def train_steps(batch: int):
  """{name: (jitted step, args)} for the three implementations."""
  import flax.nnx as nnx  # pylint: disable=g-import-not-at-top
  config = backbone.MixerConfig()
  obs, _ = common.inputs(batch)
  action = jnp.tanh(jax.random.normal(jax.random.key(2),
                                      (batch, H, common.ACTION_DIM)))
  opt = optax.chain(optax.clip_by_global_norm(10.0),
                    optax.adamw(3e-4, weight_decay=1e-2))

  def make(loss_fn, params):
    @jax.jit
    def step(params, opt_state, key):
      loss, grads = jax.value_and_grad(loss_fn)(params, key, obs, action)
      updates, opt_state = opt.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss
    return step, (params, opt.init(params), jax.random.key(3))

  model = nnx_reference.FlowNet(common.OBS_DIM, common.ACTION_DIM, config,
                                nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  nnx_loss = lambda s, k, o, a: nnx_reference.flow_loss(
      nnx.merge(graphdef, s), k, o, a)
  ref = _reference_layout_haiku(config, common.ACTION_DIM)
  ref_params = ref.init(jax.random.key(0), obs[:1], action[:1], jnp.zeros(1))
  ref_loss = lambda p, k, o, a: _flow_loss(ref.apply, p, k, o, a)
  policy = common.flow_policy()
  return {
      'nnx': make(nnx_loss, state),
      'haiku (reference layout)': make(ref_loss, ref_params),
      'haiku (rtc)': make(policy.loss, common.params_for(policy)),
  }


def _cost(step, args):
  compiled = step.lower(*args).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  text = compiled.as_text()
  return (cost.get('flops', 0.0) / 1e9, cost.get('bytes accessed', 0.0) / 1e9,
          text.count(' dot('))


def main(argv):
  del argv
  print(f'devices: {jax.devices()}', flush=True)
  print(f'\n## Training step, batch {_TRAIN_BATCH.value}', flush=True)
  steps = train_steps(_TRAIN_BATCH.value)
  rows, times = [], {}
  for name, (step, args) in steps.items():
    gflop, gbytes, dots = _cost(step, args)
    times[name] = timing.time_fn(step, *args, repeats=_REPEATS.value)
    rows.append([name, timing.fmt(times[name]), f'{gflop:.1f}',
                 f'{gbytes:.2f}', dots])
    print(f'  {name}: {timing.fmt(times[name])}', flush=True)
  for r in rows:
    r.append(f'{times[r[0]] / times["nnx"]:.2f}')
  print(timing.table(rows, ['implementation', 'step time', 'GFLOP (XLA)',
                            'GB accessed (XLA)', 'dots', 'vs nnx']))

  print('\n## Sampling latency (5 steps; realtime/bid at d=2, s=3)',
        flush=True)
  policy = common.flow_policy()
  batches = [int(b) for b in _BATCH_SIZES.value]
  lat = common.latencies(policy, common.params_for(policy), batches, 5.0)
  rows = [[op] + [timing.fmt(lat[(op, b)]) for b in batches]
          for op in ('action', 'realtime_action', 'bid_action')]
  rows.append(['realtime / action'] + [
      f'{lat[("realtime_action", b)] / lat[("action", b)]:.2f}'
      for b in batches])
  print(timing.table(rows, ['flow'] + [f'batch {b}' for b in batches]))


if __name__ == '__main__':
  cli.run(main)
