"""Tests for rtc.common.core.registry (no parameters are made)."""

import types

from absl.testing import absltest

from rtc.common.core import registry


def _family():
  return types.SimpleNamespace(make_policy=lambda model, o, a: (model, o, a))


class RegistryTest(absltest.TestCase):

  def tearDown(self):
    for kind in ('toy', 'toy_2'):
      registry.unregister(kind)
    super().tearDown()

  def test_builtin_families_load_on_first_use(self):
    self.assertEqual(registry.kinds()[:2], ('flow', 'dd'))
    self.assertEqual(registry.get('flow').__name__, 'rtc.flow.family')
    self.assertIs(registry.make_policy('dd'),
                  registry.get('dd').make_policy)
    self.assertEqual(registry.label('dd'), 'discrete diffusion')

  def test_register_adds_a_family_after_the_builtin_ones(self):
    family = _family()
    registry.register('toy', family, label='toy regression')
    registry.register('toy_2', _family())
    self.assertEqual(registry.kinds(), registry.BUILTIN_KINDS +
                     ('toy', 'toy_2'))
    self.assertIs(registry.get('toy'), family)
    self.assertEqual(registry.make_policy('toy')({}, 1, 2), ({}, 1, 2))
    self.assertEqual(registry.label('toy'), 'toy regression')
    self.assertEqual(registry.label('toy_2'), 'toy_2')
    registry.unregister('toy')
    self.assertNotIn('toy', registry.kinds())

  def test_families_declare_what_is_theirs(self):
    self.assertEqual(registry.label('flow'), 'flow')
    self.assertEqual(registry.sampling_options('flow'), ())
    self.assertIn('early_start', registry.sampling_options('dd'))
    self.assertEqual(registry.quickstart('dd')['model']['num_bins'], 64)
    self.assertGreater(registry.quickstart('dd')['eval_seconds'],
                       registry.quickstart('flow')['eval_seconds'])
    # Built-in configurations come from configs/<kind>[_eval].py.
    self.assertEqual(registry.get_config('dd').logdir, 'logs-dd')
    self.assertIn('delays', registry.get_config('flow', evaluation=True))
    # A registered family's own declarations, and defaults for the rest.
    family = types.SimpleNamespace(
        make_policy=lambda model, o, a: None, LABEL='toy regression',
        SAMPLING_OPTIONS=('temperature',),
        QUICKSTART={'train_seconds': 3},
        get_train_config=lambda preset='': {'preset': preset},
        get_eval_config=lambda: {'eval': True})
    registry.register('toy', family)
    registry.register('toy_2', _family())
    self.assertEqual(registry.label('toy'), 'toy regression')
    self.assertEqual(registry.sampling_options('toy'), ('temperature',))
    self.assertEqual(registry.quickstart('toy'),
                     dict(registry.DEFAULT_QUICKSTART, train_seconds=3))
    self.assertEqual(registry.get_config('toy', 'x'), {'preset': 'x'})
    self.assertEqual(registry.get_config('toy', evaluation=True),
                     {'eval': True})
    self.assertEqual(registry.sampling_options('toy_2'), ())
    self.assertEqual(registry.eval_rules('toy_2'), {})
    self.assertEqual(registry.quickstart('toy_2'),
                     registry.DEFAULT_QUICKSTART)

  def test_bad_registrations_are_one_line_errors(self):
    with self.assertRaisesRegex(ValueError, "already registered"):
      registry.register('flow', _family())
    with self.assertRaisesRegex(ValueError, r"lower-case name.*'Toy'"):
      registry.register('Toy', _family())
    with self.assertRaisesRegex(ValueError, 'needs a make_policy'):
      registry.register('toy', types.SimpleNamespace())
    with self.assertRaisesRegex(ValueError, 'built-in'):
      registry.unregister('dd')
    with self.assertRaisesRegex(ValueError,
                                "Unknown policy kind 'nope'; registered: "
                                'flow, dd'):
      registry.get('nope')


if __name__ == '__main__':
  absltest.main()
