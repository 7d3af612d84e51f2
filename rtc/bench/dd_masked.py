r"""Benchmark: the cost of masked DD's and per-token-level DD's realtime
sampling against their naive sampling (early start, rtc.dd.masked,
rtc.dd.token_levels), beside the uniform model's.

  bazel run //rtc/bench:dd_masked

Paper sizes (configs/dd.py presets: '' uniform, 'masked'), 5 steps, d = 3,
s = 3 (issue 14's goal: masked realtime <= 0.6x naive at d = 3). Prints, from
one run, the median latency of `action` and `realtime_action` per batch size
and their ratio, for uniform DD, and masked DD and per-token-level DD with
and without early start.
"""

from absl import flags
import jax

from configs import dd as dd_config
from rtc.bench import common
from rtc.bench import timing
from rtc.common import cli
from rtc.dd import model as dd_model

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '256'], 'Batch sizes.')
D, S = 3, 3
VARIANTS = {
    'uniform': ('', {}),
    'masked, early start': ('masked', {'early_start': True}),
    'masked, no early start': ('masked', {'early_start': False}),
    'per-token levels, early start': ('token_levels', {'early_start': True}),
    'per-token levels, no early start': ('token_levels',
                                         {'early_start': False}),
}


def make(preset, overrides):
  model = dict(dd_config.get_config(preset).model.to_dict(), **overrides)
  return dd_model.make_policy(model, common.OBS_DIM, common.ACTION_DIM)


def main(argv):
  del argv
  print(f'devices: {jax.devices()}', flush=True)
  batches = [int(b) for b in _BATCH_SIZES.value]
  rows = []
  for name, (preset, overrides) in VARIANTS.items():
    policy = make(preset, overrides)
    params = common.params_for(policy)
    naive = jax.jit(lambda p, k, o, prev, policy=policy: policy.action(
        p, k, o, common.NUM_STEPS))
    realtime = jax.jit(lambda p, k, o, prev, policy=policy:
                       policy.realtime_action(p, k, o, common.NUM_STEPS,
                                              prev, D, policy.chunk_size - S))
    for b in batches:
      obs, prev = common.inputs(b, policy.chunk_size)
      args = (params, jax.random.key(1), obs, prev)
      repeats = 20 if b <= 64 else 5
      t_naive = timing.time_fn(naive, *args, repeats=repeats)
      t_rt = timing.time_fn(realtime, *args, repeats=repeats)
      rows.append([name, b, timing.fmt(t_naive), timing.fmt(t_rt),
                   f'{t_rt / t_naive:.2f}'])
      print(rows[-1], flush=True)
  print(timing.table(rows, ['variant', 'batch', 'naive', 'realtime',
                            'realtime / naive (goal <= 0.6)']))


if __name__ == '__main__':
  cli.run(main)
