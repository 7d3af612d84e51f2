"""Test support: every binary driven in-process, its work replaced.

`Harness.run(name, *args)` runs a binary's flag parsing and checks as
`rtc.common.cli.cli.run` does (its `cli.Binary`: flags defined on a fresh
FlagValues, the command line parsed, main called), with the work replaced by
a recorder, so nothing is trained. A refusal (ValueError) that changed
anything under the harness's directory (where every output directory of
the binaries points) is an AssertionError: refusals write nothing.
"""

import dataclasses
import os
import sys
from unittest import mock

from absl import flags

from rtc.common.cli import binaries
from rtc.common.cli import cli
from rtc.common.cli import config_util
from rtc.dd import model as dd_model
from rtc.expert import generate_data
from rtc.expert import train as expert_train
from rtc.flow import model as flow_model
from rtc import quickstart

# The binaries, as rtc/<kind>/{train,eval}.py, rtc/expert/*.py and
# rtc/quickstart.py define them.
BINARIES = {
    'dd_train': binaries.train_binary('dd', dd_model.make_policy),
    'flow_train': binaries.train_binary('flow', flow_model.make_policy),
    'dd_eval': binaries.eval_binary('dd', dd_model.make_policy),
    'flow_eval': binaries.eval_binary('flow', flow_model.make_policy),
    'expert_train': expert_train.BINARY,
    'generate_data': generate_data.BINARY,
    'quickstart': quickstart.BINARY,
}


class Ran(Exception):
  """The binary got past its checks to its work."""


def ran(config, flag_values):
  raise Ran(config, flag_values)


def tree_state(root: str) -> dict:
  """{relative path: (size, mtime_ns)} of everything under root."""
  out = {}
  for d, dirs, files in os.walk(root):
    for n in dirs + files:
      p = os.path.join(d, n)
      st = os.lstat(p)
      out[os.path.relpath(p, root)] = (
          None if n in dirs else st.st_size, st.st_mtime_ns)
  return out


class Harness:
  """Runs a binary's flag parsing, checks and (recorded) work in-process."""

  def __init__(self, tmp: str):
    self.tmp = tmp
    # Valid paths for every binary, so only the option under test is bad.
    expert_run = os.path.join(tmp, 'expert_run')
    os.makedirs(expert_run, exist_ok=True)
    self.base = {
        'dd_train': [f'--config.run_path={expert_run}',
                     f'--config.logdir={tmp}/logs-dd'],
        'flow_train': [f'--config.run_path={expert_run}',
                       f'--config.logdir={tmp}/logs-flow'],
        'dd_eval': [f'--output_dir={tmp}/eval_dd'],
        'flow_eval': [f'--output_dir={tmp}/eval_flow'],
        'expert_train': [f'--config.logdir={tmp}/logs-expert'],
        'generate_data': [f'--config.run_path={expert_run}'],
        'quickstart': [f'--output_dir={tmp}/qs'],
    }

  def run(self, name: str, *args: str, base: bool = True):
    """Returns the config the work got; raises ValueError for bad input."""
    before = tree_state(self.tmp)
    try:
      return self._run(name, *args, base=base)
    except ValueError:
      after = tree_state(self.tmp)
      if after != before:
        changed = sorted(k for k in set(before) | set(after)
                         if before.get(k) != after.get(k))
        raise AssertionError(f'{name} refused {args} but changed '
                             f'{changed} under {self.tmp}') from None
      raise

  def _run(self, name: str, *args: str, base: bool = True):
    binary = dataclasses.replace(BINARIES[name], work=ran)
    argv = ['prog'] + (self.base[name] if base else []) + list(args)
    argv = config_util.resolve_config_arg(argv)
    flag_values = flags.FlagValues()
    with mock.patch.object(sys, 'argv', argv):  # ml_collections reads it.
      main = cli.define(binary, argv, flag_values)
      cli.parse_flags(argv, flag_values, binary.table)
      try:
        main(argv)
      except Ran as r:
        return r.args[0]
    raise AssertionError('main returned without running its work')
