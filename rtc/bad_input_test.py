"""Bad input to every binary gives one line naming the option and the fix.

The binaries are driven as `cli.run` drives them (their `cli.Binary`: flags
defined on a fresh FlagValues, the command line parsed, main called), with
the work replaced by a recorder, so nothing is trained: every check must
fail before any heavy work, and a refusal must leave every output
directory as it was (rtc.binary_testing.Harness). Two cases run the real `python -m` binaries to
check the printed line, the exit status and the absence of grain's warning.
"""

import contextlib
import dataclasses
import io
import math
import os
import subprocess
import sys
from unittest import mock

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized

from configs import data as data_config
from configs import dd as dd_config
from configs import dd_eval as dd_eval_config
from configs import expert as expert_config
from configs import flow as flow_config
from configs import flow_eval as flow_eval_config
from configs import quickstart as quickstart_config
from rtc import binary_testing
from rtc.common.base import paths
from rtc.common.base import validate
from rtc.common.bc import runs
from rtc.common.cli import cli
from rtc.common.cli import config_util
from rtc import quickstart

# What 0 and negative values may mean, written down independently of the
# rules in rtc.common.base.validate (NaN is never valid).
ZERO_OK = {'seed', 'warmup_steps', 'weight_decay', 'parallel_levels', 'step',
           'weak_step', 'vf_coef', 'ent_coef', 'rpo_alpha', 'gamma',
           'gae_lambda', 'solve_threshold', 'max_guidance_weight',
           'process_id'}
NEGATIVE_OK = {'step', 'weak_step'}

BINARIES = binary_testing.BINARIES
Harness = binary_testing.Harness
_ran = binary_testing.ran


class RuleTest(absltest.TestCase):

  def test_ranges(self):
    cases = [(validate.COUNT, 1, True), (validate.COUNT, 0, False),
             (validate.COUNT, -3, False), (validate.COUNT, 2.5, False),
             (validate.COUNT, True, False),
             (validate.POSITIVE, 1e-9, True), (validate.POSITIVE, 0.0, False),
             (validate.POSITIVE, math.inf, False),
             (validate.NON_NEGATIVE, 0.0, True),
             (validate.NON_NEGATIVE, math.nan, False),
             (validate.FRACTION, 1.0, True), (validate.FRACTION, 0.0, True),
             (validate.FRACTION, 1.01, False),
             (validate.ANY_INT, -7, True), (validate.COUNT, None, False),
             (validate.SWEEP['weak_step'], None, True)]
    for rule, value, ok in cases:
      with self.subTest(rule=rule, value=value):
        if ok:
          validate.check_value('x', value, rule)
        else:
          with self.assertRaisesRegex(ValueError, r'^--config\.x must be '):
            validate.check_value('x', value, rule)

  def test_bound_named_by_another_option(self):
    rule = validate.SWEEP['bid']['bid_k']
    validate.check_value('bid_k', 4, rule, {'n_samples': 4}, 'bid.')
    with self.assertRaisesRegex(
        ValueError, r'--config\.bid\.bid_k must be in \[1, '
        r'--config\.bid\.n_samples\] \(an integer\), or unset '
        r'\(--config\.bid\.n_samples is 4\), got 5\.'):
      validate.check_value('bid_k', 5, rule, {'n_samples': 4}, 'bid.')

  def test_every_numeric_option_has_a_rule_and_defaults_pass(self):
    configs = [(dd_config.get_config(), validate.BC_TRAIN),
               (flow_config.get_config(), validate.BC_TRAIN),
               (dd_eval_config.get_config(), validate.SWEEP),
               (flow_eval_config.get_config(), validate.SWEEP),
               (data_config.get_config(), validate.DATA),
               (quickstart_config.get_config(), quickstart.config_table()),
               (quickstart_config.get_config('test'),
                quickstart.config_table())]
    configs += [(expert_config.get_config(p), validate.EXPERT)
                for p in expert_config.PRESETS]
    configs += [(data_config.get_config(p), validate.DATA)
                for p in data_config.PRESETS]
    for config, table in configs:
      numeric = {o for o in validate.numeric_options(config)
                 if 'model.' not in o}  # Checked by the model classes.
      self.assertEmpty(numeric - set(validate.rule_names(table)))
      validate.check_config(config, table)


class NumericOptionsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.harness = Harness(self.create_tempdir().full_path)

  @parameterized.named_parameters(*[(n, n) for n in BINARIES])
  def test_zero_negative_and_nan(self, name):
    binary = BINARIES[name]
    options = validate.rule_names(binary.table)
    self.assertNotEmpty(options)
    for option in options:
      leaf = option.rsplit('.', 1)[-1]
      rule = eval(  # pylint: disable=eval-used
          'binary.table' + ''.join(f'[{p!r}]' for p in option.split('.')))
      values = [('0', leaf in ZERO_OK), ('-1', leaf in NEGATIVE_OK)]
      if rule.kind is float:
        values.append(('nan', False))
      for text, ok in values:
        with self.subTest(option=option, value=text):
          arg = f'--config.{option}={text}'
          if ok:
            config = self.harness.run(name, arg)
            got = config
            for part in option.split('.'):
              got = got[part]
            self.assertEqual(got, float(text))
          else:
            with self.assertRaisesRegex(
                ValueError, rf'^--config\.{option} must be .*, got '
                rf'{text}\.?0?\.$'):
              self.harness.run(name, arg)

  def test_non_number_names_the_option(self):
    with self.assertRaisesRegex(
        ValueError, r"^flag --config\.batch_size=abc: invalid literal .*'abc'"
        r'; --config\.batch_size must be >= 1 \(an integer\)\.$'):
      self.harness.run('dd_train', '--config.batch_size=abc')
    with self.assertRaisesRegex(
        ValueError, r'^flag --config\.flow\.num_epochs=nan: .*; '
        r'--config\.flow\.num_epochs must be >= 1 \(an integer\)\.$'):
      self.harness.run('quickstart', '--config.flow.num_epochs=nan')

  def test_model_options(self):
    with self.assertRaisesRegex(
        ValueError, r'^--config\.model\.num_bins must be >= 2, got 1\.$'):
      self.harness.run('dd_train', '--config.model.num_bins=1')
    with self.assertRaisesRegex(
        ValueError, r"^--config\.model\.variant must be one of \('uniform', "
        r"'masked', 'token_levels', 'discrete_rtc'\), got 'maskd'\.$"):
      self.harness.run('dd_train', '--config.model.variant=maskd')
    with self.assertRaisesRegex(
        ValueError, r'^--config\.flow\.model\.num_layers must be >= 1'):
      self.harness.run('quickstart', '--config.flow.model.num_layers=0')

  def test_report_latency_csv_is_checked_before_any_stage(self):
    out = os.path.join(self.create_tempdir().full_path, 'qs')
    bad = os.path.join(self.create_tempdir().full_path, 'latency.csv')
    with open(bad, 'w') as f:
      f.write('device,batch\n')
    with self.assertRaisesRegex(FileNotFoundError, r'^Latency CSV \S+/none'
                                r'\.csv not found: pass a file written by'):
      self.harness.run('quickstart', f'--output_dir={out}',
                       '--config.report_latency_csv=/nonexistent/none.csv')
    with self.assertRaisesRegex(ValueError, r'latency\.csv lacks columns '
                                r"\['policy', .*not a latency CSV"):
      self.harness.run('quickstart', f'--output_dir={out}',
                       f'--config.report_latency_csv={bad}')
    self.assertFalse(os.path.exists(out))

  def test_valid_command_line_reaches_the_work(self):
    config = self.harness.run('dd_train', '--config.batch_size=7',
                              '--config.learning_rate=0.5')
    self.assertEqual((config.batch_size, config.learning_rate), (7, 0.5))


class UnknownOptionTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.harness = Harness(self.create_tempdir().full_path)

  def test_names_option_closest_and_files(self):
    with self.assertRaisesRegex(
        ValueError, r'^--config\.bach_size is not an option of '
        r'configs/dd\.py; closest: --config\.batch_size\. Every option is '
        r'listed in configs/dd\.py, configs/common\.py\.$'):
      self.harness.run('dd_train', '--config.bach_size=3')

  def test_without_config_flag_and_far_from_any_name(self):
    # --config not given: ml_collections parses the default file at flag
    # definition, where the AttributeError used to escape.
    with self.assertRaisesRegex(ValueError, r'^--config\.not_an_option is '
                                r'not an option of configs/flow\.py; '
                                r'closest: --config\.\w+'):
      self.harness.run('flow_train', '--config.not_an_option=3', base=False)

  def test_nested_quickstart_option_names_the_stage_file(self):
    with self.assertRaisesRegex(
        ValueError, r'^--config\.dd\.num_epoch is not an option of '
        r'configs/quickstart\.py; closest: --config\.dd\.num_epochs.*'
        r'listed in configs/dd\.py, configs/common\.py\.$'):
      self.harness.run('quickstart', '--config.dd.num_epoch=3')

  def test_missing_config_file(self):
    with self.assertRaisesRegex(ValueError, r'--config=.*nope\.py: no such '
                                'config file'):
      self.harness.run('expert_train', '--config=configs/nope.py')

  def test_unknown_flag(self):
    with self.assertRaisesRegex(ValueError, "Unknown command line flag "
                                "'output_dri'"):
      self.harness.run('dd_eval', '--output_dri=x')


class DirectoryTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = self.create_tempdir().full_path
    self.harness = Harness(self.tmp)

  def test_output_dir_that_cannot_be_made(self):
    with self.assertRaisesRegex(
        ValueError, r'^--output_dir=/proc/nope cannot be written \(.*\); '
        r'pass --output_dir a directory you can write to\.$'):
      self.harness.run('dd_eval', '--output_dir=/proc/nope')

  def test_parent_is_a_file(self):
    file = os.path.join(self.tmp, 'file')
    with open(file, 'w') as f:
      f.write('x')
    for name, option in (('dd_train', '--config.logdir'),
                         ('expert_train', '--config.logdir'),
                         ('quickstart', '--output_dir')):
      with self.subTest(name):
        with self.assertRaisesRegex(ValueError, rf'^{option}=.*/file/sub: '
                                    '.*is a file, not a directory'):
          self.harness.run(name, f'{option}={file}/sub')

  def test_load_dir_must_exist(self):
    with self.assertRaisesRegex(ValueError, r'^--config\.load_dir=nope is not '
                                r'a directory: pass an epoch directory'):
      self.harness.run('flow_train', '--config.load_dir=nope')

  def test_probe_leaves_nothing_behind(self):
    self.harness.run('dd_eval', f'--output_dir={self.tmp}/a/b')
    self.assertFalse(os.path.exists(os.path.join(self.tmp, 'a')))


class DefaultExpertRunTest(absltest.TestCase):
  """Train with an empty --config.run_path."""

  def setUp(self):
    super().setUp()
    self.user = self.create_tempdir().full_path
    self.harness = Harness(self.create_tempdir().full_path)
    env = mock.patch.dict(os.environ, {'BUILD_WORKING_DIRECTORY': self.user})
    env.start()
    self.addCleanup(env.stop)

  def _run(self, kind='dd'):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      config = self.harness.run(f'{kind}_train', '--config.logdir='
                                f'{self.harness.tmp}/logs', base=False)
    return config, out.getvalue()

  def _make_run(self, rel, data=True):
    os.makedirs(os.path.join(self.user, rel, 'data'))
    if data:
      open(os.path.join(self.user, rel, 'data', 'm_level.npz'), 'w').close()

  def test_none_names_the_commands(self):
    self._make_run('logs-expert/nodata', data=False)
    for kind in ('dd', 'flow'):
      with self.subTest(kind):
        with self.assertRaisesRegex(
            ValueError, r'^--config\.run_path is required, and no expert run '
            r'with data .*`bazel run //rtc:quickstart`.*'
            r'//rtc/expert:train.*//rtc/expert:generate_data'):
          self._run(kind)

  def test_the_only_one_is_used(self):
    for rel in ('logs-expert/cpu', runs.QUICKSTART_EXPERT_RUN):
      with self.subTest(rel):
        self._make_run(rel)
        self._make_run(rel + '-nodata', data=False)
        config, out = self._run('flow')
        self.assertEqual(config.run_path, rel)
        self.assertEqual(paths.resolve(config.run_path),
                         os.path.join(self.user, rel))
        self.assertEqual(out, f'[flow train] --config.run_path not given: '
                         f'using {rel}, the only expert run with data '
                         'here.\n')
        for d in (rel, rel + '-nodata'):
          os.rename(os.path.join(self.user, d),
                    os.path.join(self.harness.tmp, os.path.basename(d)))

  def test_several_are_named(self):
    self._make_run('logs-expert/a')
    self._make_run(runs.QUICKSTART_EXPERT_RUN)
    with self.assertRaisesRegex(
        ValueError, r'^--config\.run_path is required: 2 expert runs with '
        r'data are here \(logs-expert/a, quickstart_output/logs-expert/'
        r'quickstart\); pick one'):
      self._run()

  def test_given_run_path_is_kept(self):
    self._make_run('logs-expert/a')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      config = self.harness.run('dd_train', '--config.run_path=elsewhere',
                                f'--config.logdir={self.harness.tmp}/logs',
                                base=False)
    self.assertEqual((config.run_path, out.getvalue()), ('elsewhere', ''))


class CommandLineTest(absltest.TestCase):
  """What a user sees: one line on stderr, exit status 2, no warning."""

  def test_bad_value_in_a_fresh_binary(self):
    # A subprocess: grain's warning would come while importing kinetix.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               BUILD_WORKING_DIRECTORY=self.create_tempdir().full_path)
    p = subprocess.run(
        [sys.executable, '-m', 'rtc.expert.generate_data',
         '--config=configs/data.py:quickstart', '--config.chunk_steps=0'],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual((p.returncode, p.stdout), (2, ''))
    self.assertEqual(p.stderr, 'error: --config.chunk_steps must be >= 1 (an '
                     'integer), got 0.\n')

  def test_unknown_option_through_cli_run(self):
    # In-process: the option is refused before any flag is defined.
    err = io.StringIO()
    argv = ['quickstart', '--config.not_an_option=3']
    with mock.patch.object(sys, 'argv', argv), \
        mock.patch.dict(os.environ, {'BUILD_WORKING_DIRECTORY': ''}), \
        contextlib.redirect_stderr(err), \
        self.assertRaises(SystemExit) as exit_:
      cli.run(dataclasses.replace(quickstart.BINARY, work=_ran))
    self.assertEqual(exit_.exception.code, 2)
    self.assertRegex(err.getvalue(), r'^error: --config\.not_an_option is '
                     r'not an option of configs/quickstart\.py; closest: '
                     r'[^\n]*\n$')
    self.assertNotIn('config', flags.FLAGS)

  def test_finished_work_exits_zero(self):
    # The quickstart's work returns its output directory; main must still
    # return None, which absl's app.run exits 0 on (a string exits 1).
    binary = dataclasses.replace(
        quickstart.BINARY, work=lambda config, flag_values: '/a/path')
    argv = config_util.resolve_config_arg(
        ['quickstart', f'--output_dir={self.create_tempdir().full_path}'])
    flag_values = flags.FlagValues()
    with mock.patch.object(sys, 'argv', argv):
      main = cli.define(binary, argv, flag_values)
      cli.parse_flags(argv, flag_values, binary.table)
      self.assertIsNone(main(argv))

if __name__ == '__main__':
  absltest.main()
