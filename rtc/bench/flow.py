r"""Benchmark of the flow policy's training step against the published one.

  bazel run //rtc/bench:flow -- [--train_batch=512] [--repeats=5]
      [--batch_sizes=1,2048 | --batch_sizes=]

Prints, from one run (paper sizes: O=679, A=6, 256 channels, 4 layers):

1. Training-step time (loss + gradient + clip + AdamW) at `--train_batch`,
   the steps timed interleaved in one process (rtc/bench/timing.py) so load
   on a shared machine falls on all alike, for
   * `published`: Physical-Intelligence/real-time-chunking-kinetix's flow
     network as src/model.py builds it, in flax nnx
     (rtc/bench/nnx_reference.py);
   * `rtc before`: rtc.flow.model as it was before issue 16 (one-pass
     LayerNorm, token mixing over the transposed [B, C, H] activations);
   * `rtc, two-pass LayerNorm only`: the first fix alone;
   * `rtc`: rtc.flow.model as shipped;
   * `dd`: rtc.dd.model's training step (K = 256) on the same backbone;
   with XLA's FLOP and byte estimates, the compiled HLO's fusions, dots,
   transpose instructions and backward-pass instructions (those XLA labels
   `transpose(jvp(...))`), each step's ratio to `published`, and DD / flow.
2. `action`, `realtime_action`, `bid_action` latency at `--batch_sizes`
   (5 steps, d=2, s=3, 16 BID samples); `--batch_sizes=` skips it.

Findings (2-core CPU shared with other work, batch 512, jax 0.9.0; one
change at a time; step times from interleaved runs, +-10% under the load):

| rtc variant | GFLOP | GB | bwd instr. | transposes | step / published |
|---|---|---|---|---|---|
| published (nnx) | 39.6 | 5.03 | 1007 | 54 | 1.00 |
| before: one-pass LayerNorm | 37.9 | 6.07 | 3760 | 98 | 1.35 - 1.53 |
| hk.LayerNorm | 38.2 | 6.18 | 3610 | 98 | 1.58 |
| split modulations, then `[:, None]` | 37.9 | 6.07 | 3725 | 98 | 1.50 |
| concatenated [x_t, obs] projection | 40.3 | 6.02 | 3552 | 94 | 1.40 |
| two-pass LayerNorm | 37.3 | 5.33 | 1549 | 50 | 1.07 - 1.25 |
| + gelu rematerialised | 37.5 | 5.16 | 1685 | 50 | 1.10 |
| + whole network token-major (einsum) | 37.4 | 5.77 | 1553 | 56 | 1.18 - 1.21 |
| **+ token MLP on [H, B * C] (shipped)** | 36.7 | 4.68 | 1356 | 42 | 0.72 |

* The issue's "3858 transposes" count the word in the HLO text: nearly all
  are the `transpose(jvp(...))` labels of backward-pass instructions. The
  transpose instructions themselves: 98 (before) against 54.
* First cause, the hand-written one-pass LayerNorm: its gradient (through
  the clamp, the square of the mean and E[x^2]) is duplicated into many
  fusions: 2.4x the backward instructions and 14% more bytes than the
  two-pass form, whose output is the same (and more accurate in float32).
* Second cause, shared with the published code: token mixing transposes the
  activations to [B, C, H], so its hidden layer is [B, C, T] (T = 64, 8x the
  activations' size, about 3.8 of the 5 GB a step moves) and its gradients
  run through [B*C, 8] x [8, 64]-shaped matmuls; alone (one layer, forward
  and backward) that took 2.4x the channel MLP's time. On the token-major
  [H, B * C] view the same MLP is two plain matmuls with a [T, B * C] hidden
  layer and 3x faster; only the small [B, H, C] activations are transposed.
  An einsum over the token axis does not get there: XLA transposes its
  output (the token-major row above).
* Not the cause: the output projection's bias/extra fold (flow's A = 6
  output takes the plain `x @ w + b` path), the table-first bin projection
  (DD only), the split observation projection (it saves 2.4 GFLOP),
  Precision.HIGHEST (rtc's embedding has no matmul), float64 or int64 (none
  in either HLO).
"""

import contextlib

from absl import flags
import haiku as hk
import jax
import jax.numpy as jnp
import optax

from rtc.bench import common
from rtc.bench import nnx_reference
from rtc.bench import timing
from rtc.common.base import validate
from rtc.common.cli import cli
from rtc.common.core import backbone

_BATCH_SIZES = flags.DEFINE_list(
    'batch_sizes', ['1', '2048'],
    'Batch sizes for the sampling latencies (empty: skip them).')
_TRAIN_BATCH = flags.DEFINE_integer('train_batch', 512,
                                    'Batch size of the training steps.')
_REPEATS = flags.DEFINE_integer(
    'repeats', 5, 'Timed training steps per implementation (interleaved).')


def _one_pass_layer_norm(x):
  """rtc's LayerNorm before the fix (one-pass, clamped variance)."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.maximum(jnp.mean(jnp.square(x), axis=-1, keepdims=True)
                    - jnp.square(mean), 0.0)
  return (x - mean) * jax.lax.rsqrt(var + backbone.LAYER_NORM_EPS)


def _hidden_transposed_token_mix(y, hidden_dim):
  """rtc's token mixing before the fix (and the published one's): hk.Linear
  over the transposed [B, C, H] activations, a [B, C, T] hidden layer."""
  num_tokens = y.shape[1]
  y = hk.Linear(hidden_dim, with_bias=False, name='token_mix_in')(
      jnp.swapaxes(y, 1, 2))
  y = hk.Linear(num_tokens, with_bias=False, name='token_mix_out')(
      jax.nn.gelu(y))
  return jnp.swapaxes(y, 1, 2)


@contextlib.contextmanager
def _backbone_with(**functions):
  """Traces the backbone with some of its functions replaced."""
  saved = {name: getattr(backbone, name) for name in functions}
  for name, fn in functions.items():
    setattr(backbone, name, fn)
  try:
    yield
  finally:
    for name, fn in saved.items():
      setattr(backbone, name, fn)


def _compile(loss_fn, params, batch, chunk_size):
  """(compiled step, its args): loss + gradient + clip + AdamW."""
  obs, _ = common.inputs(batch, chunk_size)
  action = jnp.tanh(jax.random.normal(jax.random.key(2),
                                      (batch, chunk_size, common.ACTION_DIM)))
  opt = optax.chain(optax.clip_by_global_norm(10.0),
                    optax.adamw(3e-4, weight_decay=1e-2))

  def step(params, opt_state, key):
    loss, grads = jax.value_and_grad(loss_fn)(params, key, obs, action)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  args = (params, opt.init(params), jax.random.key(3))
  return jax.jit(step).lower(*args).compile(), args


def _hlo_stats(compiled):
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  text = compiled.as_text()
  return [f'{cost.get("flops", 0.0) / 1e9:.1f}',
          f'{cost.get("bytes accessed", 0.0) / 1e9:.2f}',
          text.count(' fusion('), text.count(' dot('),
          text.count(' transpose('), text.count('transpose(jvp')]


def train_steps(batch: int):
  """{name: (compiled step, args)}."""
  import flax.nnx as nnx  # pylint: disable=g-import-not-at-top
  config = backbone.MixerConfig()
  model = nnx_reference.FlowNet(common.OBS_DIM, common.ACTION_DIM, config,
                                nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  published = lambda s, k, o, a: nnx_reference.flow_loss(
      nnx.merge(graphdef, s), k, o, a)
  flow, dd = common.flow_policy(), common.dd_policy()
  h = config.action_chunk_size
  steps = {'published': _compile(published, state, batch, h)}
  params = common.params_for(flow)
  with _backbone_with(layer_norm=_one_pass_layer_norm,
                      token_mix=_hidden_transposed_token_mix):
    steps['rtc before'] = _compile(flow.loss, params, batch, h)
  with _backbone_with(token_mix=_hidden_transposed_token_mix):
    steps['rtc, two-pass LayerNorm only'] = _compile(flow.loss, params, batch,
                                                     h)
  steps['rtc'] = _compile(flow.loss, params, batch, h)
  steps['dd'] = _compile(dd.loss, common.params_for(dd), batch, h)
  return steps


def main(argv):
  del argv
  validate.check_flags({'batch_sizes': validate.COUNT,
                        'train_batch': validate.COUNT,
                        'repeats': validate.COUNT})
  print(f'devices: {jax.devices()}', flush=True)
  print(f'\n## Training step, batch {_TRAIN_BATCH.value}, '
        f'{_REPEATS.value} interleaved steps each', flush=True)
  steps = train_steps(_TRAIN_BATCH.value)
  times = timing.interleaved(steps, _REPEATS.value)
  rows = []
  for name, (compiled, _) in steps.items():
    rows.append([name, timing.fmt(times[name])] + _hlo_stats(compiled) +
                [f'{times[name] / times["published"]:.2f}'])
  print(timing.table(rows, ['implementation', 'step time', 'GFLOP (XLA)',
                            'GB accessed (XLA)', 'fusions', 'dots',
                            'transposes', 'backward instr.',
                            'vs published']))
  print(f'\nrtc / published: {times["rtc"] / times["published"]:.2f} '
        '(goal <= 0.8)')
  print(f'dd / rtc (flow): {times["dd"] / times["rtc"]:.2f}', flush=True)

  batches = [int(b) for b in _BATCH_SIZES.value]
  if not batches:
    return
  print('\n## Sampling latency (5 steps; realtime/bid at d=2, s=3)',
        flush=True)
  policy = common.flow_policy()
  lat = common.latencies(policy, common.params_for(policy), batches, 5.0)
  rows = [[op] + [timing.fmt(lat[(op, b)]) for b in batches]
          for op in ('action', 'realtime_action', 'bid_action')]
  rows.append(['realtime / action'] + [
      f'{lat[("realtime_action", b)] / lat[("action", b)]:.2f}'
      for b in batches])
  print(timing.table(rows, ['flow'] + [f'batch {b}' for b in batches]))


if __name__ == '__main__':
  cli.run(main)
