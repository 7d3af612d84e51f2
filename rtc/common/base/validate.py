"""The valid range of every numeric option of every binary, in one table.

A binary checks its whole configuration against its table before any work
(rtc.common.cli.cli.Binary), so a bad value stops it at once with one line that
names the option and the range:

  error: --config.batch_size must be >= 1 (an integer), got 0.

The tables below follow the config files (configs/common.py's `bc_train` and
`sweep`, configs/expert.py, configs/data.py; rtc.quickstart.config_table builds
configs/quickstart.py's from them and each family's EVAL_RULES); a table
value that is itself a dict is the table of a sub-configuration. The model
options (`model.*`) are checked by the models' own config classes
(rtc.common.core.backbone.MixerConfig, rtc.dd.model.ModelConfig) through
`check_model`. validate_test checks that every numeric option of every config
file has a rule here.
"""

import dataclasses
import math
from typing import Callable, Optional, Union

Bound = Union[int, float, str, None]  # A str names a sibling option.


@dataclasses.dataclass(frozen=True)
class Rule:
  """`kind` (int or float) within [lo, hi] (lo excluded if `lo_open`)."""
  kind: type
  lo: Bound = None
  hi: Bound = None
  lo_open: bool = False
  optional: bool = False  # None (unset) is allowed.

  def describe(self, prefix: str = '') -> str:
    """E.g. '>= 1 (an integer)', 'in [0, 1] (a finite number), or unset'."""
    what = 'an integer' if self.kind is int else 'a finite number'
    lo, hi = ('' if b is None else
              f'--config.{prefix}{b}' if isinstance(b, str) else str(b)
              for b in (self.lo, self.hi))
    if lo and hi:
      out = f'in {"(" if self.lo_open else "["}{lo}, {hi}] ({what})'
    elif lo:
      out = f'{">" if self.lo_open else ">="} {lo} ({what})'
    elif hi:
      out = f'<= {hi} ({what})'
    else:
      out = what
    return out + (', or unset' if self.optional else '')


ANY_INT = Rule(int)
COUNT = Rule(int, lo=1)
NON_NEGATIVE_INT = Rule(int, lo=0)
SEED = NON_NEGATIVE_INT
POSITIVE = Rule(float, lo=0, lo_open=True)
NON_NEGATIVE = Rule(float, lo=0)
FRACTION = Rule(float, lo=0, hi=1)

# configs/common.py: distributed (in bc_train, sweep, configs/expert.py and
# configs/data.py).
DISTRIBUTED = {
    'num_processes': Rule(int, lo=1, optional=True),
    'process_id': Rule(int, lo=0, optional=True),  # < num_processes.
    'initialization_timeout_s': COUNT,
    'heartbeat_timeout_s': COUNT,
    'wait_timeout_s': COUNT,
}

# configs/common.py: bc_train (configs/flow.py, configs/dd.py).
BC_TRAIN = {
    'seed': SEED,
    'batch_size': COUNT,
    'num_epochs': COUNT,
    'learning_rate': POSITIVE,
    'warmup_steps': NON_NEGATIVE_INT,
    'weight_decay': NON_NEGATIVE,
    'grad_norm_clip': POSITIVE,
    'log_every': COUNT,
    'eval': {'num_evals': COUNT, 'num_flow_steps': COUNT},
    'distributed': DISTRIBUTED,
}

# configs/common.py: sweep (configs/flow_eval.py, configs/dd_eval.py).
SWEEP = {
    'step': ANY_INT,  # -1 the latest epoch, -2 the one before, ...
    'weak_step': Rule(int, optional=True),
    'num_evals': COUNT,
    'num_flow_steps': COUNT,
    'seed': SEED,
    'realtime': {'max_guidance_weight': NON_NEGATIVE},
    'bid': {'n_samples': COUNT,
            'bid_k': Rule(int, lo=1, hi='n_samples', optional=True)},
    'latency_batch': COUNT,
    'distributed': DISTRIBUTED,
}

# configs/expert.py.
EXPERT = {
    'seed': SEED,
    'num_seeds': COUNT,
    'parallel_levels': NON_NEGATIVE_INT,  # 0: all levels at once.
    'num_envs': COUNT,
    'num_steps': COUNT,
    'num_updates': COUNT,
    'num_minibatches': COUNT,
    'update_epochs': COUNT,
    'learning_rate': POSITIVE,
    'max_grad_norm': POSITIVE,
    'gamma': FRACTION,
    'gae_lambda': FRACTION,
    'clip_eps': POSITIVE,
    'vf_coef': NON_NEGATIVE,
    'ent_coef': NON_NEGATIVE,
    'rpo_alpha': NON_NEGATIVE,
    'obs_history': COUNT,
    'hidden_dim': COUNT,
    'save_every': COUNT,
    'distributed': DISTRIBUTED,
}

# configs/data.py.
DATA = {
    'num_envs': COUNT,
    'num_steps': COUNT,
    'solve_threshold': FRACTION,
    'seed': SEED,
    'chunk_steps': COUNT,
    'distributed': DISTRIBUTED,
}

def check_value(name: str, value, rule: Rule, config=None,
                prefix: str = '') -> None:
  """Raises ValueError naming `--config.<prefix><name>` and its range.

  A bound given as an option name is read from `config`, the
  configuration `name` belongs to (at `prefix`).
  """
  option = f'--config.{prefix}{name}'
  if value is None and rule.optional:
    return
  bounds = []
  for bound in (rule.lo, rule.hi):
    if isinstance(bound, str):
      bound = config[bound]
    bounds.append(bound)
  lo, hi = bounds
  if not _in_range(value, rule, lo, hi):
    got = 'unset' if value is None else repr(value)
    named = ''.join(f' (--config.{prefix}{b} is {v})'
                    for b, v in zip((rule.lo, rule.hi), bounds)
                    if isinstance(b, str))
    raise ValueError(f'{option} must be {rule.describe(prefix)}{named}, got '
                     f'{got}.')


def _in_range(value, rule: Rule, lo, hi) -> bool:
  ok = (value is not None and not isinstance(value, bool)
        and isinstance(value, (int, float)) and math.isfinite(value)
        and (rule.kind is not int or float(value).is_integer()))
  if ok and lo is not None:
    ok = value > lo if rule.lo_open else value >= lo
  if ok and hi is not None:
    ok = value <= hi
  return ok


def _parse(text: str, kind: type):
  try:
    return kind(text)
  except ValueError:
    return None


def check_flags(table: dict, flag_values=None) -> None:
  """Plain absl flags (the bench and plot binaries) against {flag name:
  Rule} (numeric bounds only). A list flag, or a string flag holding a
  comma-separated list, is checked item by item. Raises one line:
  `--<flag> must be >= 1 (an integer), got 0.`"""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flags.FLAGS if flag_values is None else flag_values
  for name, rule in table.items():
    value = flag_values[name].value
    many = isinstance(value, (list, str))
    items = ([s.strip() for s in value.split(',') if s.strip()]
             if isinstance(value, str) else value if many else [value])
    for item in items:
      number = _parse(item, rule.kind) if isinstance(item, str) else item
      if number is None and rule.optional and not many:
        continue
      if not _in_range(number, rule, rule.lo, rule.hi):
        each = ', each of a comma-separated list' if many else ''
        raise ValueError(f'--{name} must be {rule.describe()}{each}, got '
                         f'{item!r}.')


def check_config(config, table: dict, prefix: str = '') -> None:
  """Checks every option of `table` in `config` (a ConfigDict)."""
  for name, rule in table.items():
    if isinstance(rule, dict):
      check_config(config[name], rule, f'{prefix}{name}.')
    else:
      check_value(name, config[name], rule, config, prefix)


def check_model(model_config, make_policy: Callable,
                prefix: Optional[str] = '') -> None:
  """The model options (`<prefix>model.*`), checked by the policy's own
  config class (no parameters are made)."""
  try:
    make_policy(model_config, 1, 1)
  except ValueError as e:
    message = str(e)
    if message.startswith('model.'):
      message = f'--config.{prefix}{message}'
    raise ValueError(message) from None


def numeric_options(config, prefix: str = '') -> list[str]:
  """Every int or float option of `config` (placeholders included), dotted;
  for the test that every one has a rule."""
  out = []
  for key in config.keys():
    value = config[key]
    if hasattr(value, 'keys'):
      out += numeric_options(value, f'{prefix}{key}.')
    elif config.get_type(key) in (int, float):
      out.append(f'{prefix}{key}')
  return out


def rule_names(table: dict, prefix: str = '') -> list[str]:
  out = []
  for name, rule in table.items():
    if isinstance(rule, dict):
      out += rule_names(rule, f'{prefix}{name}.')
    else:
      out.append(f'{prefix}{name}')
  return out
