r"""Benchmark of discrete-diffusion sampling beside flow (paper sizes).

  bazel run //rtc/bench:dd

Prints, from one run, `action`, `realtime_action` and `bid_action` latency
at batch 1 and 2048 for DD and for flow (5 steps, d=2, s=3, 16 BID
samples), and the ratios the design aims at: DD realtime / DD action
(goal <= 1.2: guidance needs no gradients) and DD realtime / flow realtime
(goal <= 0.5).
"""

from absl import flags
import jax

from configs import dd_eval
from rtc.bench import common
from rtc.bench import timing
from rtc.common import cli

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '2048'],
                                 'Batch sizes.')
_GUIDANCE = flags.DEFINE_float(
    'dd_guidance', dd_eval.DEFAULT_GUIDANCE,
    'DD guidance g (default: configs/dd_eval.py). Latency does not depend '
    'on it.')


def main(argv):
  del argv
  print(f'devices: {jax.devices()}', flush=True)
  batches = [int(b) for b in _BATCH_SIZES.value]
  dd = common.dd_policy()
  flow = common.flow_policy()
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
