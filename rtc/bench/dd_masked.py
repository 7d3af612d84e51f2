r"""Benchmark: the cost of every DD variant's realtime sampling against its
own naive sampling (early start, rtc.dd.masked, rtc.dd.token_levels; early
stop and adaptive unmasking, rtc.dd.discrete_rtc), beside the uniform
model's.

  bazel run //rtc/bench:dd_masked

Paper sizes (configs/dd.py presets: '' uniform, 'masked', 'token_levels',
'discrete_rtc' with its published K = 512), 5 steps, d = 3, s = 3 (issue 14's
goal: masked realtime <= 0.6x naive; issue 23's: discrete_rtc realtime with
early stop <= 0.7x). Per batch size and variant, `action` and
`realtime_action` are timed in interleaved rounds in one process (load on a
shared machine falls on both alike); it prints their median latencies, the
ratio and, for discrete_rtc, the decoding steps realtime ran (early stop
depends on the network's confidence: these are untrained parameters, and a
batch stops only when every chunk's first d + s positions are unmasked).
"""

from absl import flags
import jax

from configs import dd as dd_config
from rtc.bench import common
from rtc.bench import timing
from rtc.common.cli import cli
from rtc.dd import model as dd_model

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '256'], 'Batch sizes.')
_ROUNDS = flags.DEFINE_list('rounds', ['30', '7'], 'Interleaved rounds per '
                            'batch size (the last value for the rest).')
_ONLY = flags.DEFINE_string('only', '', 'Time only the variants whose name '
                            'contains this (e.g. discrete_rtc).')
D, S = 3, 3
VARIANTS = {
    'uniform': ('', {}),
    'masked, early start': ('masked', {'early_start': True}),
    'masked, no early start': ('masked', {'early_start': False}),
    'masked, early stop': ('masked', {'early_start': False,
                                      'early_stop': True}),
    'masked, early start + early stop': ('masked', {'early_start': True,
                                                    'early_stop': True}),
    'per-token levels, early start': ('token_levels', {'early_start': True}),
    'per-token levels, no early start': ('token_levels',
                                         {'early_start': False}),
    'discrete_rtc, early stop': ('discrete_rtc', {'early_stop': True}),
    'discrete_rtc, no early stop': ('discrete_rtc', {'early_stop': False}),
    'discrete_rtc, early stop + adaptive': (
        'discrete_rtc', {'early_stop': True, 'adaptive_unmasking': True}),
    'discrete_rtc, adaptive only': (
        'discrete_rtc', {'early_stop': False, 'adaptive_unmasking': True}),
}


def make(preset, overrides):
  model = dict(dd_config.get_config(preset).model.to_dict(), **overrides)
  return dd_model.make_policy(model, common.OBS_DIM, common.ACTION_DIM)


def main(argv):
  del argv
  print(f'devices: {jax.devices()}', flush=True)
  batches = [int(b) for b in _BATCH_SIZES.value]
  rounds = [int(r) for r in _ROUNDS.value]
  rows = []
  for name, (preset, overrides) in VARIANTS.items():
    if _ONLY.value not in name:
      continue
    policy = make(preset, overrides)
    params = common.params_for(policy)
    naive = jax.jit(lambda p, k, o, prev, policy=policy: policy.action(
        p, k, o, common.NUM_STEPS))
    realtime = jax.jit(lambda p, k, o, prev, policy=policy:
                       policy.realtime_action(p, k, o, common.NUM_STEPS,
                                              prev, D, policy.chunk_size - S))
    for i, b in enumerate(batches):
      obs, prev = common.inputs(b, policy.chunk_size)
      args = (params, jax.random.key(1), obs, prev)
      t = timing.interleaved({'naive': (naive, args),
                              'realtime': (realtime, args)},
                             rounds[min(i, len(rounds) - 1)])
      steps = '-'
      if hasattr(policy, 'prefixed'):  # discrete_rtc: decoding steps run.
        steps = str(int(jax.jit(
            lambda p, k, o, prev, policy=policy: policy.prefixed(
                p, k, o, common.NUM_STEPS, prev, D, S)[1])(*args)))
      rows.append([name, b, timing.fmt(t['naive']),
                   timing.fmt(t['realtime']),
                   f'{t["realtime"] / t["naive"]:.2f}', steps])
      print(rows[-1], flush=True)
  print(timing.table(rows, ['variant', 'batch', 'naive', 'realtime',
                            'realtime / naive', 'realtime steps']))


if __name__ == '__main__':
  cli.run(main)
