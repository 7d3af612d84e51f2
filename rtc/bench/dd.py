r"""Benchmark of discrete-diffusion sampling beside flow (paper sizes).

  bazel run //rtc/bench:dd

Prints, from one run, `action`, `realtime_action` and `bid_action` latency
at batch 1 and 2048 for DD and for flow (5 steps, d=2, s=3, 16 BID
samples), and the ratios the design aims at: DD realtime / DD action
(goal <= 1.2: guidance needs no gradients) and DD realtime / flow realtime
(goal <= 0.5); and first where one denoising step's time goes at batch 2048
(`--step_batch`): the DD network (with and without the guidance tilt), DD's
reverse step and draw, the flow network; and beside them the slower
alternatives DD's code avoids (a separate bias add on the output layer,
XLA's reduce-max over the bins).
"""

from absl import flags
import jax
import jax.numpy as jnp

from configs import dd_eval
from rtc.bench import common
from rtc.bench import timing
from rtc.common.base import validate
from rtc.common.cli import cli
from rtc.common.core import backbone
from rtc.common.core import prefix
from rtc.dd import base
from rtc.dd import reverse

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '2048'],
                                 'Batch sizes.')
_GUIDANCE = flags.DEFINE_float(
    'dd_guidance', dd_eval.DEFAULT_GUIDANCE,
    'DD guidance g (default: configs/dd_eval.py). Latency does not depend '
    'on it.')
_NUM_BINS = flags.DEFINE_integer(
    'dd_num_bins', 256, 'DD bins K (the paper size: 256).')
_STEP_BATCH = flags.DEFINE_integer(
    'step_batch', 2048, 'Batch of the per-denoising-step breakdown (0: off).')


def step_breakdown(dd, flow, batch):
  """Seconds per denoising step, and the alternatives DD's sampler avoids."""
  obs, prev = common.inputs(batch, dd.chunk_size)
  bins = jnp.zeros((batch, dd.chunk_size, dd.action_dim), jnp.int32)
  x_t = jnp.zeros((batch, flow.chunk_size, flow.action_dim))
  y = dd.to_bins(prev)
  w = prefix.prefix_weights(2, dd.chunk_size - 3, dd.chunk_size, 'exp')
  pd, pf = common.params_for(dd), common.params_for(flow)
  logits = jax.jit(dd.logits)
  tilted = jax.jit(lambda p, o, x, t: dd.logits(p, o, x, t, (y, w, 3.0)))
  step = jax.jit(lambda key, lg, x: reverse.reverse_sample(key, lg, x, 0.6,
                                                           0.4))
  lg = logits(pd, obs, bins, 0.5)
  hidden = jax.random.normal(jax.random.key(0), (batch, dd.chunk_size,
                                                 dd.config.channel_dim))
  out = pd[f'{base.ROOT}/out_proj']
  parts = [
      ('DD network (logits)', logits, pd, obs, bins, 0.5),
      ('DD network, guidance tilt inside the output matmul', tilted, pd, obs,
       bins, 0.5),
      ('DD reverse step + draw', step, jax.random.key(0), lg, bins),
      ('flow network (velocity)', jax.jit(flow.velocity), pf, obs, x_t, 0.5),
      ('DD output layer, bias folded into the matmul',
       jax.jit(backbone.project), hidden, out['w'], out['b']),
      ('DD output layer, bias added after',
       jax.jit(lambda h, w, b: h @ w + b), hidden, out['w'], out['b']),
      ('max over the bins, pairwise halving',
       jax.jit(reverse.max_last), lg),
      ('max over the bins, jnp.max',
       jax.jit(lambda x: jnp.max(x, axis=-1)), lg),
  ]
  return {name: timing.time_fn(fn, *args, repeats=3)
          for name, fn, *args in parts}


def main(argv):
  del argv
  validate.check_flags({'batch_sizes': validate.COUNT,
                        'dd_guidance': validate.NON_NEGATIVE,
                        'dd_num_bins': validate.Rule(int, lo=2),
                        'step_batch': validate.NON_NEGATIVE_INT})
  print(f'devices: {jax.devices()}', flush=True)
  batches = [int(b) for b in _BATCH_SIZES.value]
  dd = common.dd_policy(_NUM_BINS.value)
  flow = common.flow_policy()
  if _STEP_BATCH.value:  # First, in a fresh process: the large buffers of
    # the batch-2048 latency runs below slow the later allocations.
    parts = step_breakdown(dd, flow, _STEP_BATCH.value)
    print(f'One denoising step at batch {_STEP_BATCH.value}:')
    print(timing.table([[k, timing.fmt(v)] for k, v in parts.items()],
                       ['part', 'time']))
  lat_dd = common.latencies(dd, common.params_for(dd), batches,
                            _GUIDANCE.value)
  lat_flow = common.latencies(flow, common.params_for(flow), batches, 5.0)
  rows = []
  for op in ('action', 'realtime_action', 'bid_action'):
    rows.append([op] + [timing.fmt(lat[(op, b)]) for b in batches
                        for lat in (lat_dd, lat_flow)])
  header = ['op'] + [f'{kind} batch {b}' for b in batches
                     for kind in ('DD', 'flow')]
  print(timing.table(rows, header))
  ratios = []
  for b in batches:
    ratios.append([f'batch {b}',
                   f'{lat_dd[("realtime_action", b)] / lat_dd[("action", b)]:.2f}',
                   f'{lat_dd[("realtime_action", b)] / lat_flow[("realtime_action", b)]:.2f}',
                   f'{lat_dd[("action", b)] / lat_flow[("action", b)]:.2f}'])
  print(timing.table(ratios, ['', 'DD realtime / DD action (goal <= 1.2)',
                              'DD realtime / flow realtime (goal <= 0.5)',
                              'DD action / flow action']))


if __name__ == '__main__':
  cli.run(main)
