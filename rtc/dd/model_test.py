"""Tests for rtc.dd.model, the DD family's dispatcher: `model.variant`, the
upgrade of older config.json forms, refusals and the presets."""

import dataclasses
import inspect
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax

from configs import dd as dd_config
from rtc.common.bc import checkpoints
from rtc.common.bc import runs
from rtc.dd import base
from rtc.dd import masked
from rtc.dd import model as dd_model
from rtc.dd import testing
from rtc.dd import token_levels
from rtc.dd import uniform
from rtc.flow import model as flow_model

O, A, K = testing.O, testing.A, testing.K
BASE_OPTIONS = {f.name for f in dataclasses.fields(base.ModelConfig)} - {
    'variant'}
# config.json `model` sections of every older form (tiny sizes), with the
# leaf each must load into and options it must keep.
OLD_FORMS = {
    # The seed's model, before model.decode (expected_value_output).
    'seed_expected_value_output': (
        dict(testing.TINY, expected_value_output=True), uniform.UniformPolicy,
        dict(decode='expected_value')),
    'seed_sampled': (dict(testing.TINY, expected_value_output=False),
                     uniform.UniformPolicy, dict(decode='sample')),
    # configs/dd.py's default / seed presets before model.variant.
    'uniform': (dict(testing.TINY, decode='mode', ordinal_head=4,
                     centre_features=True), uniform.UniformPolicy,
                dict(decode='mode', ordinal_head=4)),
    # Its 'masked' preset: model.corruption.
    'masked': (dict(testing.TINY, corruption='mask', unmask_order='confidence',
                    early_start=False, soft_positions='given',
                    decode='expected_value'),
               masked.MaskedDiffusionPolicy,
               dict(unmask_order='confidence', early_start=False,
                    soft_positions='given')),
    # Masked from before early start and soft positions.
    'masked_first': (dict(testing.TINY, corruption='mask',
                          expected_value_output=True),
                     masked.MaskedDiffusionPolicy,
                     dict(early_start=True, soft_positions='tilt',
                          decode='expected_value')),
    # Its 'token_levels' preset: model.corruption and model.token_levels.
    'token_levels': (dict(testing.TINY, corruption='uniform',
                          token_levels='independent', token_level_share=0.25,
                          soft_positions='tilt', early_start=True),
                     token_levels.TokenLevelsPolicy,
                     dict(token_level_share=0.25, early_start=True)),
    'shared_levels': (dict(testing.TINY, corruption='uniform',
                           token_levels='shared'), uniform.UniformPolicy,
                      dict(decode='sample')),
}


class UpgradeTest(parameterized.TestCase):

  @parameterized.named_parameters(*((name,) + form for name, form in
                                    OLD_FORMS.items()))
  def test_old_config_json_loads_into_its_leaf(self, model, leaf, kept):
    run_dir = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    runs.write_run_config(run_dir, {'kind': 'dd', 'model': model})
    read = runs.read_run_config(run_dir)['model']
    policy = dd_model.make_policy(read, O, A)
    self.assertIs(type(policy), leaf)
    self.assertEqual(policy.config.variant,
                     {uniform.UniformPolicy: 'uniform',
                      masked.MaskedDiffusionPolicy: 'masked',
                      token_levels.TokenLevelsPolicy: 'token_levels'}[leaf])
    for k, v in kept.items():
      self.assertEqual(getattr(policy.config, k), v, k)
    # Its parameters: the leaf's own, saved and loaded back with the shape
    # check checkpoints run on every load.
    direct = leaf(type(policy.config)(**dd_model.upgrade(model)), O, A)
    path = os.path.join(run_dir, 'params.pkl')
    checkpoints.save_params(path, direct.init(jax.random.key(0)))
    checkpoints.load_checked(path, policy.param_shapes())
    # The same options but the variant: a masked checkpoint has the mask
    # token's row, the others none.
    shared = {k: v for k, v in dd_model.upgrade(model).items()
              if k in BASE_OPTIONS}
    other = 'uniform' if leaf is masked.MaskedDiffusionPolicy else 'masked'
    with self.assertRaisesRegex(ValueError, r'dd_embed/embeddings has shape'):
      checkpoints.load_checked(path, dd_model.make_policy(
          dict(shared, variant=other), O, A).param_shapes())

  def test_upgrade_writes_the_new_form(self):
    self.assertEqual(
        dd_model.upgrade({'corruption': 'mask', 'num_bins': 8}),
        {'variant': 'masked', 'num_bins': 8, 'decode': 'sample'})
    self.assertEqual(
        dd_model.upgrade({'corruption': 'uniform', 'token_levels':
                          'independent', 'decode': 'mode'}),
        {'variant': 'token_levels', 'decode': 'mode'})
    # An evaluation's model.decode wins over the old option.
    self.assertEqual(dd_model.upgrade({'expected_value_output': True,
                                       'decode': 'mode'}), {'decode': 'mode'})

  def test_old_forms_that_name_no_variant_are_refused(self):
    for model in (dict(corruption='gaussian'),
                  dict(corruption='mask', token_levels='independent'),
                  dict(corruption='uniform', token_levels='per_dim'),
                  dict(corruption='mask', variant='uniform')):
      with self.assertRaisesRegex(ValueError, r'^model\.variant: .*set '
                                  r'model\.variant to one of'):
        dd_model.make_policy(dict(testing.TINY, **model), O, A)


class VariantTest(absltest.TestCase):

  def test_variant_read_from_options(self):
    c = dd_config.get_config('masked')
    model = dict(c.model.to_dict(), **testing.TINY)
    policy = dd_model.make_policy(model, O, A)
    self.assertIsInstance(policy, masked.MaskedDiffusionPolicy)
    # The embedding has a mask-token row; the uniform one does not.
    shapes = policy.param_shapes()
    emb = [v for k, v in shapes.items() if 'embed' in k][0]['embeddings']
    self.assertEqual(emb.shape, (A, K + 1, 8))
    plain = dd_model.make_policy(dict(model, variant='uniform',
                                      unmask_order=None,
                                      early_start=None,
                                      early_stop=None,
                                      soft_positions=None), O, A)
    self.assertIs(type(plain), uniform.UniformPolicy)
    old = {k: v for k, v in model.items() if k not in
           ('variant', 'unmask_order', 'early_start', 'early_stop',
            'soft_positions')}
    self.assertIs(type(dd_model.make_policy(old, O, A)),
                  uniform.UniformPolicy)

  def test_every_leaf_defines_the_interface(self):
    for name, leaf in dd_model.VARIANTS.items():
      self.assertEqual(leaf.Config().variant, name)
      policy = testing.tiny_policy(name)
      self.assertIs(type(policy), leaf.Policy)
      for method in ('init', 'action', 'realtime_action', 'bid_action',
                     'loss', 'loss_and_metrics', 'training_time_action',
                     'param_shapes'):
        self.assertEqual(
            list(inspect.signature(getattr(flow_model.FlowPolicy,
                                           method)).parameters),
            list(inspect.signature(getattr(leaf.Policy,
                                           method)).parameters),
            (name, method))

  def test_impossible_combinations_are_refused(self):
    cases = (
        (dict(variant='gaussian'), r"model\.variant must be one of \("
         r"'uniform', 'masked', 'token_levels', 'discrete_rtc'\), got "
         r"'gaussian'"),
        (dict(variant='uniform', unmask_order='random'),
         r"model\.unmask_order is not an option of model\.variant = "
         r"'uniform' \(it is of \('masked',\)\); remove it or set "
         r"model\.variant\.$"),
        (dict(variant='uniform', early_start=True),
         r"model\.early_start is not an option of model\.variant = 'uniform'"
         r" \(it is of \('masked', 'token_levels'\)\)"),
        (dict(variant='token_levels', unmask_order='random'),
         r'model\.unmask_order is not an option of model\.variant'),
        (dict(variant='masked', unmask_order='left_to_right'),
         r'model\.unmask_order must be one'),
        (dict(variant='masked', soft_positions='blend'),
         r'model\.soft_positions must be'),
        (dict(variant='uniform', soft_positions='given'),
         r'model\.soft_positions is not an option of model\.variant'),
        (dict(variant='masked', num_binz=3),
         r"^model\.num_binz is not an option of model\.variant = 'masked'; "
         r'remove it or set model\.variant\.$'),
    )
    for options, message in cases:
      with self.assertRaisesRegex(ValueError, message):
        dd_model.make_policy(dict(testing.TINY, **options), O, A)
    with self.assertRaisesRegex(ValueError, 'unknown preset'):
      dd_config.get_config('maskd')

  def test_presets_set_the_variant(self):
    for preset, leaf in (('', uniform.UniformPolicy),
                         ('seed', uniform.UniformPolicy),
                         ('masked', masked.MaskedDiffusionPolicy),
                         ('token_levels', token_levels.TokenLevelsPolicy)):
      model = dd_config.get_config(preset).model.to_dict()
      self.assertNotIn('corruption', model)
      self.assertNotIn('token_levels', model)
      policy = dd_model.make_policy(dict(model, **testing.TINY), O, A)
      self.assertIs(type(policy), leaf, preset)
      self.assertEqual(policy.config.variant, model['variant'])


if __name__ == '__main__':
  absltest.main()
