r"""Benchmark: the latency of one chunk per policy and method, for the
cost-adjusted sweep (docs/cost_adjusted.md, rtc.common.bc.cost).

  bazel run //rtc/bench:latency -- --output=$PWD/docs/latency_cpu.csv
  bazel run //rtc/bench:latency -- --run_paths=logs-flow/a,dd=logs-dd/b

Policies: `--presets` (quickstart policy names, configs/quickstart.py
POLICIES, at the sizes of `--quickstart_preset`, randomly initialised:
latency does not depend on the weights) and/or `--run_paths` (training run
directories, `[NAME=]PATH`, named by rtc.common.bc.cost.policy_name unless
NAME is given; their model options from config.json). Each policy is timed
as configured and with every other value of the sampling options of
rtc.common.bc.cost.cost_options() it has (e.g. DD's early_start). A policy
without model.simulated_delay gets `training_time` from a twin with
`--simulated_delay` (the twin's other methods cost the same, so only
training_time is timed there).

For each batch size of `--batch_sizes`, every (policy, sampling, method)
chunk is compiled, then timed `--repeats` times in interleaved rounds
(rtc.common.bc.latency.measure): median and 90th percentile. The CSV
(rtc.common.bc.cost.CSV_COLUMNS) has each method's ratio to flow naive's
latency (the first flow policy, same device and batch) and to its own
policy's naive; a companion .txt records the command, date, device and
load.
"""

import datetime
import os
import sys

from absl import flags
import jax

from configs import quickstart as quickstart_config
from rtc.common.base import cache
from rtc.common.base import paths
from rtc.common.bc import cost
from rtc.common.bc import latency
from rtc.common.cli import cli
from rtc.common.core import registry
from rtc.common.env import rollout

MIN_REPEATS = 50
OBS_DIM = 679  # The paper's large levels (rtc.bench.common).

FLAGS = flags.FLAGS
flags.DEFINE_list('presets', None, 'Quickstart policy names to time at the '
                  'quickstart\'s sizes, randomly initialised (default: '
                  'every policy of --quickstart_preset but the training-'
                  'time ones, when no --run_paths).')
flags.DEFINE_string('quickstart_preset', 'variants,discrete_rtc',
                    'configs/quickstart.py preset giving the policies and '
                    'their sizes (e.g. "variants,test").')
flags.DEFINE_list('run_paths', [], 'Training run directories, [NAME=]PATH.')
flags.DEFINE_list('methods', list(rollout.METHODS), 'Methods to time '
                  '(training_time only for runs with simulated_delay).')
flags.DEFINE_list('batch_sizes', ['1', '128'], 'Batch sizes (1 = one robot).')
flags.DEFINE_integer('repeats', MIN_REPEATS, 'Timed calls per (policy, '
                     f'method, batch), >= {MIN_REPEATS}.')
flags.DEFINE_integer('num_steps', 5, 'Sampling steps per chunk.')
flags.DEFINE_integer('delay', 2, 'Inference delay d of the timed chunk.')
flags.DEFINE_integer('execute_horizon', 0, 'Execution horizon s (0: '
                     'max(1, d)).')
flags.DEFINE_integer('n_samples', 16, 'BID samples per chunk.')
flags.DEFINE_integer('simulated_delay', 4, 'model.simulated_delay of the '
                     'twins that time training_time for policies without '
                     'one (0: skip them).')
flags.DEFINE_integer('obs_dim', OBS_DIM, 'Observation size of the presets.')
flags.DEFINE_integer('action_dim', 6, 'Action size of the presets.')
flags.DEFINE_string('output', 'latency.csv', 'The CSV to write (its '
                    'companion .txt beside it).')
flags.DEFINE_string('note', '', 'A line for the companion .txt (e.g. the '
                    'machine\'s load).')


def _ints(name, values, lo):
  out = []
  for v in values:
    try:
      out.append(int(v))
    except ValueError:
      raise ValueError(f'--{name} must be integers, got {v!r}.') from None
    if out[-1] < lo:
      raise ValueError(f'--{name} must be >= {lo}, got {out[-1]}.')
  if not out:
    raise ValueError(f'--{name} is empty.')
  return out


def check_flags():
  """The flags' ranges; ValueError (one line) before any work."""
  for name, lo in (('repeats', MIN_REPEATS), ('num_steps', 1),
                   ('delay', 0), ('execute_horizon', 0), ('n_samples', 1),
                   ('simulated_delay', 0),
                   ('obs_dim', 1), ('action_dim', 1)):
    if getattr(FLAGS, name) < lo:
      raise ValueError(f'--{name} must be >= {lo}, got '
                       f'{getattr(FLAGS, name)}.')
  unknown = [m for m in FLAGS.methods if m not in rollout.METHODS]
  if unknown:
    raise ValueError(f'--methods: unknown method {unknown[0]!r}; use any of '
                     f'{", ".join(rollout.METHODS)}.')
  if REFERENCE not in FLAGS.methods:
    raise ValueError(f'--methods must include {REFERENCE!r}, the reference '
                     'of every ratio.')
  batches = _ints('batch_sizes', FLAGS.batch_sizes, 1)
  presets = FLAGS.presets
  if presets is None:
    presets = [] if FLAGS.run_paths else default_presets()
  for p in presets:
    if p not in quickstart_config.POLICIES:
      raise ValueError(f'--presets: unknown policy {p!r}; use any of '
                       f'{", ".join(quickstart_config.POLICIES)}.')
  if not presets and not FLAGS.run_paths:
    raise ValueError('No policy to time: give --presets or --run_paths.')
  paths.check_writable_dir(
      os.path.dirname(os.path.abspath(paths.resolve(FLAGS.output))),
      '--output')
  return presets, batches


REFERENCE = cost.REFERENCE_METHOD


def default_presets() -> list:
  """The policies of `--quickstart_preset`'s config, less the training-time
  ones (every policy's training_time is timed on its twin)."""
  config = quickstart_config.get_config(FLAGS.quickstart_preset)
  return [n for n in quickstart_config.POLICIES
          if n in config and n not in quickstart_config.TRAINING_TIME]


def preset_policies(presets):
  """[(name, kind, model dict, obs_dim, action_dim)] of quickstart presets."""
  config = quickstart_config.get_config(FLAGS.quickstart_preset)
  out = []
  for name in presets:
    if name not in config:
      raise ValueError(f'--presets: {name!r} is not in configs/quickstart.py:'
                       f'{FLAGS.quickstart_preset}; add the preset that '
                       'defines it (e.g. "variants") to --quickstart_preset.')
    kind = quickstart_config.POLICIES[name][0]
    out.append((name, kind, config[name].model.to_dict(), FLAGS.obs_dim,
                FLAGS.action_dim))
  return out


def run_policies(entries):
  """[(name, kind, model, obs_dim, action_dim)] of run directories."""
  from rtc.common.bc import runs  # pylint: disable=g-import-not-at-top
  out = []
  for entry in entries:
    name, sep, path = entry.partition('=')
    if not sep:
      name, path = '', entry
    run_dir = paths.resolve(path)
    info = runs.read_run_config(run_dir) if os.path.isdir(run_dir) else None
    if info is None:
      raise ValueError(f'--run_paths: {path} is not a training run directory '
                       'with config.json (e.g. logs-flow/<run>).')
    out.append((name or cost.policy_name(run_dir), info['kind'],
                dict(info['model']), int(info['obs_dim']),
                int(info['action_dim'])))
  return out


def subjects_for(policies):
  """latency.Subjects: every policy with each sampling variant."""
  names = [p[0] for p in policies]
  dup = sorted({n for n in names if names.count(n) > 1})
  if dup:
    raise ValueError(f'Two policies are named {dup[0]!r}: name them, '
                     '--run_paths=NAME=PATH.')
  out = []
  twin = 'training_time' in FLAGS.methods and FLAGS.simulated_delay > 0
  for name, kind, model, obs_dim, action_dim in policies:
    for override in cost.sampling_variants(model):
      models = [(dict(model, **override), ())]
      if twin and model.get('simulated_delay') is None:
        models.append((dict(model, **override,
                            simulated_delay=FLAGS.simulated_delay),
                       ('training_time',)))
      for options, only in models:
        policy = registry.make_policy(kind)(options, obs_dim, action_dim)
        out.append(latency.Subject(name, kind, policy,
                                   jax.jit(policy.init)(jax.random.key(0)),
                                   only=only))
  return out


def check_subjects(subjects):
  refs = [s for s in subjects if s.kind == cost.REFERENCE_KIND and
          not s.only]
  if not refs:
    raise ValueError('No flow policy to be the reference: add flow to '
                     '--presets or a flow run to --run_paths.')
  chunk = min(s.policy.chunk_size for s in subjects)
  d = FLAGS.delay
  s = FLAGS.execute_horizon or max(1, d)
  if 2 * d > chunk:
    raise ValueError(f'--delay must be in [0, H/2 = {chunk // 2}], got {d}.')
  if not max(1, d) <= s <= chunk - d:
    raise ValueError(f'--execute_horizon must be in [max(1, d), H - d] = '
                     f'[{max(1, d)}, {chunk - d}], got {s}.')
  return refs[0].name, d, s


def main(argv):
  del argv
  cache.enable_compilation_cache()
  presets, batches = check_flags()
  policies = preset_policies(presets) + run_policies(FLAGS.run_paths)
  subjects = subjects_for(policies)
  reference, delay, horizon = check_subjects(subjects)
  methods = [rollout.Method(m, n_samples=FLAGS.n_samples)
             for m in FLAGS.methods]
  load = os.getloadavg()
  start = datetime.datetime.now().astimezone()
  rows = latency.measure(subjects, methods, batches, FLAGS.num_steps, delay,
                         horizon, FLAGS.repeats, reference)
  wall = datetime.datetime.now().astimezone() - start
  lines = [
      f'{os.path.basename(FLAGS.output)}: rtc latency bench',
      'command: bazel run //rtc/bench:latency -- ' + ' '.join(sys.argv[1:]),
      f'date: {start:%Y-%m-%d %H:%M %Z} ({wall.total_seconds():.0f} s)',
      f'device: {latency.device_name()}',
      'load average (1/5/15 min) at start: ' + _load(load) + '; at end: '
      + _load(os.getloadavg())]
  if FLAGS.note:
    lines.append(f'note: {FLAGS.note}')
  header = '\n'.join(lines) + '\n'
  path = cost.write_csv(paths.resolve(FLAGS.output), rows, header)
  print(table(rows))
  print(f'wrote {path}')


def _load(values) -> str:
  return ' '.join(f'{x:.2f}' for x in values)


def table(rows) -> str:
  lines = ['| batch | policy | sampling | method | median | p90 | '
           '/ flow naive | / own naive |', '|---' * 8 + '|']
  for r in rows:
    lines.append(
        f'| {r["batch"]} | {r["policy"]} | {r["sampling"] or "-"} | '
        f'{r["method"]} | {r["median_s"] * 1e3:.2f} ms | '
        f'{r["p90_s"] * 1e3:.2f} ms | {r["ratio_to_flow_naive"]:.2f} | '
        f'{r["ratio_to_own_naive"]:.2f} |')
  return '\n'.join(lines)


if __name__ == '__main__':
  cli.run(main)  # Bad input: one line `error: ...`, exit status 2.
