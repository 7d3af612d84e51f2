"""Start-up shared by every rtc binary.

* Under `bazel run`, change into the directory the user typed the command in
  (`BUILD_WORKING_DIRECTORY`), so relative paths on the command line (config
  files, run and output directories) mean what the user meant, and outputs
  land in the user's tree, never under bazel-out.
* Turn on the persistent compilation and level caches (rtc.common.base.cache).
* Bad input gets one line, `error: ...`, and exit status 2: unknown flags and
  `--config.<option>`s (rtc.common.cli.config_util.check_overrides), values out
  of range (rtc.common.base.validate, checked before any work), missing files.
* Grain's start-up warning about profiling support in jaxlib (grain comes
  with kinetix and is not used here), JAX's backend-probe lines and
  XLA:CPU's false cache-loading errors are dropped (rtc.common.base.quiet;
  rtc.common.env.envs installs the log filters before Kinetix loads).

A binary with a `--config` file is a `Binary`: its config file, the table
of its options' ranges, its checks and its work, run by `run(binary)`.
"""

import dataclasses
import os
import re
import sys
from typing import Any, Callable, Optional

from absl import app
from absl import flags
from ml_collections import config_flags

from rtc.common.base import cache
from rtc.common.base import quiet
from rtc.common.base import validate
from rtc.common.cli import config_util

EXIT_BAD_INPUT = 2


quiet.install_filters()


def prepare() -> None:
  wd = os.environ.get('BUILD_WORKING_DIRECTORY')
  if wd and os.path.isdir(wd):
    os.chdir(wd)
  quiet.filter_stderr()  # Before any program is loaded from the cache.
  cache.enable_compilation_cache()


@dataclasses.dataclass(frozen=True)
class Binary:
  """A binary whose options come from an ml_collections config file.

  `work(config, flag_values)` runs after the whole config has passed
  `table` (rtc.common.base.validate) and `check(config, flag_values)` (paths and
  other checks that need no heavy work).
  """
  config_file: str  # configs/<config_file> is the --config default.
  help: str
  table: dict
  work: Callable[[Any, flags.FlagValues], Any]
  check: Optional[Callable[[Any, flags.FlagValues], None]] = None
  extra_flags: Optional[Callable[[flags.FlagValues], None]] = None
  lock_config: bool = True

  @property
  def default_config(self) -> str:
    return config_util.default_config(self.config_file)

  def define(self, flag_values: flags.FlagValues = flags.FLAGS) -> Callable:
    """Defines --config (and extra flags) on flag_values; returns main."""
    holder = config_flags.DEFINE_config_file(
        'config', self.default_config, self.help, flag_values=flag_values,
        lock_config=self.lock_config)
    if self.extra_flags is not None:
      self.extra_flags(flag_values)

    def main(argv):
      del argv
      config = holder.value
      validate.check_config(config, self.table)
      if self.check is not None:
        self.check(config, flag_values)
      # The work's result (a path, say) is not an exit status: absl's
      # app.run would print it and exit 1.
      self.work(config, flag_values)

    return main


def _first_line(message: str) -> str:
  lines = [l.strip() for l in str(message).strip().splitlines() if l.strip()]
  return lines[0] if lines else ''


def parse_flags(argv, flag_values: flags.FlagValues = flags.FLAGS,
                table: Optional[dict] = None):
  """`flag_values(argv)`, with every error a one-line ValueError; a value
  that does not parse gets its option's range from `table`."""
  try:
    return flag_values(argv)
  except flags.IllegalFlagValueError as e:
    message = _first_line(e)
    m = re.match(r'flag --config\.([\w.]+)=', message)
    rule = table
    for part in (m.group(1).split('.') if m and table else ()):
      rule = rule.get(part) if isinstance(rule, dict) else None
    if isinstance(rule, validate.Rule):
      prefix = m.group(1)[:m.group(1).rfind('.') + 1]
      message += f'; --config.{m.group(1)} must be {rule.describe(prefix)}'
    raise ValueError(message + '.') from None
  except flags.Error as e:
    raise ValueError(_first_line(e)) from None
  except (AttributeError, KeyError) as e:  # ml_collections, unforeseen.
    raise ValueError(f'unknown --config option ({_first_line(e)}).') \
        from None


def define(binary: Binary, argv,
           flag_values: flags.FlagValues = flags.FLAGS) -> Callable:
  """binary.define after checking argv's --config.<option>s; ValueError
  (one line) for a missing config file or an unknown option.

  ml_collections reads the overrides from sys.argv, so argv must be it
  (after `config_util.resolve_config_arg`).
  """
  config_util.check_overrides(argv[1:], binary.default_config)
  try:
    return binary.define(flag_values)
  except (flags.Error, AttributeError, KeyError) as e:
    raise ValueError(_first_line(e)) from None


def _fail(error) -> None:
  print(f'error: {error}', file=sys.stderr, flush=True)
  sys.exit(EXIT_BAD_INPUT)


def run(target) -> None:
  """Runs a `Binary`, or `main(argv)` like `absl.app.run`, after
  `prepare()`; bad input becomes one line `error: ...` and exit status 2."""
  prepare()
  table = None
  if isinstance(target, Binary):
    sys.argv = config_util.resolve_config_arg(sys.argv)
    table = target.table
    try:
      main = define(target, sys.argv)
    except ValueError as e:
      _fail(e)
  else:
    main = target

  def parser(argv):
    try:
      return parse_flags(argv, table=table)
    except ValueError as e:
      _fail(e)

  def wrapped(argv):
    try:
      return main(argv)
    except (FileNotFoundError, ValueError, FloatingPointError) as e:
      # Bad input gets one clear line; the traceback adds nothing for users.
      print(f'error: {e}', file=sys.stderr, flush=True)
      return EXIT_BAD_INPUT

  app.run(wrapped, flags_parser=parser)

