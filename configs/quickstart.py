"""The quickstart: experts -> data -> flow and DD behaviour cloning -> the
real-time chunking comparison, on one CPU, with built-in defaults.

  bazel run //rtc:quickstart [-- --output_dir=quickstart_output]

Every stage's options are the ones of its own binary (configs/expert.py,
data.py, flow.py, dd.py, flow_eval.py, dd_eval.py); this file only picks
sizes that fit the 20-minute budget on a 2-core machine. `--config.<stage>.
<option>` overrides any of them, e.g. --config.eval.num_evals=1024.
The policy families compared are rtc.common.core.registry's built-in ones, each
with its configs/<kind>.py and configs/<kind>_eval.py.
"""

from ml_collections import config_dict

from configs import data
from configs import expert
from rtc.common.core import registry



# The CPU suite (`:suite`): levels where experts solve >= 0.9 and naive
# flow's solve rate, in the mean over a replicated benchmark's replicates,
# drops >= 0.2 from d = 0 to d = 4. Of the 34 s/ and m/ levels kinetix-env
# ships only m/h0_unicycle does (docs/level_survey.csv, then
# docs/benchmark/: m/arm_hard 0.086, s/h5_rotate_fall nothing); its five
# variants in this repository's worlds/ (`bazel run
# //rtc/bench:unicycle_worlds`) all do over 3 replicates, and so does the
# shipped level beside them (docs/benchmark_unicycle/suite_levels.csv, made
# by `bazel run //rtc/bench:level_survey -- --from_results=...`).
# worlds/m/h0_unicycle.json is kinetix-env's level unchanged.
SUITE_WORLDS = 'worlds'
SUITE = ('m/h0_unicycle', 'm/unicycle_goal_far', 'm/unicycle_goal_low',
         'm/unicycle_goal_near', 'm/unicycle_start_left',
         'm/unicycle_weak_motor')
# Compared policies: name -> (kind, preset of configs/<kind>.py). The
# quickstart's DD is masked DD, chosen by measurement (docs/dd_variants.md "Which DD
# variant": on m/h0_unicycle its naive sampling beats flow's realtime);
# `:variants` adds configs/dd.py's default (uniform corruption, the seed's
# process) and its per-token-level preset.
POLICIES = {'flow': ('flow', ''), 'dd': ('dd', 'masked'),
            'dd_uniform': ('dd', ''), 'dd_token_levels': ('dd', 'token_levels'),
            'dd_discrete_rtc': ('dd', 'discrete_rtc'),
            'flow_training_time': ('flow', ''),
            'dd_training_time': ('dd', 'masked')}
VARIANTS = ('dd_uniform', 'dd_token_levels')
# Training-time RTC (`:training_time`): {policy: its base policy}. Each is
# its base's preset trained with model.simulated_delay = SIMULATED_DELAY
# (delays 0..4 drawn in training, the sweep's delays) and evaluated with the
# `training_time` method only; the report compares it with its base's
# methods (rtc.common.bc.stats.comparisons).
TRAINING_TIME = {'flow_training_time': 'flow', 'dd_training_time': 'dd'}
SIMULATED_DELAY = 5


def training_time_bases(names) -> dict:
  """{policy: its base} of the TRAINING_TIME policies in `names` whose
  base is also there (their verdicts pair them with it)."""
  names = set(names)
  return {n: b for n, b in TRAINING_TIME.items() if n in names and b in names}
LABELS = {'dd': 'discrete diffusion (masked)',
          'flow_training_time': 'flow matching, training-time RTC',
          'dd_training_time': 'discrete diffusion (masked), training-time RTC',
          'dd_uniform': 'discrete diffusion (uniform)',
          'dd_token_levels': 'discrete diffusion (per-token levels)',
          'dd_discrete_rtc': 'discrete diffusion (DiscreteRTC recipe)'}


def _kind_preset(name):
  return POLICIES.get(name, (name, ''))
VARIANT_METHODS = 'naive,realtime,hard_masking'
PRESETS = ('', 'test', 'variants', 'suite', 'discrete_rtc', 'training_time')


# Backbone sizes: the quickstart's, and its test preset's.
SMALL_BACKBONE = dict(channel_dim=64, channel_hidden_dim=128,
                      token_hidden_dim=32, num_layers=2)
TEST_BACKBONE = dict(channel_dim=16, channel_hidden_dim=16,
                     token_hidden_dim=8, num_layers=1)


def _backbone(model, sizes):
  """Sets the backbone's sizes of a family that has the backbone."""
  model.update({k: v for k, v in sizes.items() if k in model})


def _bc(c):
  _backbone(c.model, SMALL_BACKBONE)
  c.batch_size = 128
  c.num_epochs = 4
  c.warmup_steps = 100
  c.learning_rate = 1e-3
  c.log_every = 200
  return c


def get_config(preset: str = ''):
  """`preset`: '' or comma-separated names of PRESETS, e.g. 'suite,test'."""
  presets = [p.strip() for p in preset.split(',') if p.strip()]
  for p in presets:
    if p not in PRESETS:
      raise ValueError(f'configs/quickstart.py: unknown preset {p!r}; use '
                       f'one or more (comma-separated) of {PRESETS[1:]}.')
  c = config_dict.ConfigDict()
  c.output_dir = 'quickstart_output'
  # Run the flow branch (training, evaluation) and the DD branch side by
  # side, one thread each; False runs them one after the other.
  c.parallel = True
  # Independent repetitions of the whole pipeline (experts, data, training,
  # evaluation), each with its own seeds; the report gives 95% intervals
  # over them (docs/benchmark.md). The benchmark (`:suite`) runs 3.
  c.replicates = 1
  # Base seed: replicate r's stage seeds are each stage's own seed option
  # plus 1000 * (seed + r) (rtc.quickstart.replicate_seeds).
  c.seed = 0
  c.expert = expert.get_config('quickstart')
  c.data = data.get_config('quickstart')
  # The policies compared: a kind of rtc.common.core.registry, or
  # <kind>_<preset> for a preset of configs/<kind>.py (`:variants`); each
  # has its training block c.<name> and evaluation block c.<name>_eval.
  c.policies = ','.join(registry.BUILTIN_KINDS)
  # Blocks for every registered family (a family added with
  # registry.register runs with --config.policies=<kind>).
  names = list(registry.kinds())
  if 'variants' in presets:
    names += VARIANTS
    c.policies = ','.join(list(registry.BUILTIN_KINDS) + list(VARIANTS))
  if 'discrete_rtc' in presets:  # DiscreteRTC's recipe (docs/discrete_rtc.md).
    names.append('dd_discrete_rtc')
    c.policies += ',dd_discrete_rtc'
  if 'training_time' in presets:  # Training-time RTC (TRAINING_TIME).
    names += TRAINING_TIME
    c.policies += ',' + ','.join(TRAINING_TIME)
  for name in names:
    kind, variant = _kind_preset(name)
    c[name] = _bc(registry.get_config(kind, variant))
    # The family's own quickstart sizes (rtc.common.core.registry: QUICKSTART).
    c[name].model.update(registry.quickstart(kind)['model'])
    if name in TRAINING_TIME:
      c[name].model.simulated_delay = SIMULATED_DELAY
  # The comparison: every method at delays 0..4 with s = max(1, d), 128
  # episodes per point (standard error <= 0.044): on m/h0_unicycle flow's
  # realtime and hard_masking beat naive by 0.14-0.32 at d = 3, 4. Episodes
  # that fail run to the 256-step limit, so evaluation dominates the budget.
  # Report titles of the policies (default: the kind's label).
  c.labels = config_dict.ConfigDict({n: LABELS[n] for n in names
                                     if n in LABELS})
  c.eval = config_dict.ConfigDict()
  c.eval.methods = 'naive,realtime,bid,hard_masking'
  c.eval.delays = '0,1,2,3,4'
  c.eval.execute_horizons = 'min'
  c.eval.num_evals = 128
  c.eval.num_flow_steps = 5
  c.eval.seed = 0
  # The cost-adjusted comparison (configs/common.py: sweep; docs/
  # cost_adjusted.md), e.g. --config.eval.cost_adjusted=True
  # --config.eval.latency_csv=docs/latency_cpu.csv.
  c.eval.cost_adjusted = False
  c.eval.latency_csv = ''
  c.eval.measure_latency = True
  c.eval.latency_batch = 1
  # A latency CSV of `bazel run //rtc/bench:latency` (e.g. docs/
  # latency_cpu.csv): the report adds a cost-adjusted table derived from
  # the standard sweep (rtc.common.bc.cost_report.derived_rows) at
  # eval.latency_batch's ratios. '' = none. Only the report reads it.
  c.report_latency_csv = ''
  # Methods of one policy when not eval.methods: {name: 'naive,...'}.
  c.eval.methods_for = config_dict.ConfigDict(
      {n: VARIANT_METHODS for n in names if n in VARIANTS})
  c.eval.methods_for.update({n: 'training_time' for n in names
                             if n in TRAINING_TIME})
  for name in names:
    c[f'{name}_eval'] = registry.get_config(_kind_preset(name)[0],
                                            evaluation=True)
  if 'suite' in presets:
    # The CPU benchmark (`bazel run //rtc:benchmark`): the suite's levels,
    # 256 episodes per point (standard error <= 0.031 per level).
    c.output_dir = 'benchmark_output'
    c.expert.levels = ','.join(SUITE)
    c.expert.worlds_dir = SUITE_WORLDS
    c.eval.num_evals = 256
    c.replicates = 3
  if 'test' in presets:  # The tests' shrunken configuration, 1 replicate.
    c.replicates = 1
    c.expert.num_seeds = 1
    c.expert.num_envs = 8
    c.expert.num_steps = 16
    c.expert.num_updates = 2
    c.expert.save_every = 1
    c.data.num_envs = 8
    c.data.num_steps = 512
    for name in names:
      bc = c[name]
      bc.num_epochs = 1
      bc.batch_size = 32
      bc.log_every = 4
      _backbone(bc.model, TEST_BACKBONE)
      bc.model.update(
          registry.quickstart(_kind_preset(name)[0])['test_model'])
    c.eval.methods = 'naive,realtime'
    c.eval.delays = '0,2'
    c.eval.num_evals = 4
    c.eval.num_flow_steps = 2
  return c
