"""Tests of rtc.dd.discrete_rtc: network, loss, realtime sampling (early stop,
adaptive unmasking), bad options, checkpoints, and one tiny run through the
shared training loop and evaluation sweep."""

import csv
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from configs import dd as dd_config
from configs import dd_eval as dd_eval_config
from rtc.common.base import cache
from rtc.common.base import validate
from rtc.common.bc import checkpoints
from rtc.common.bc import evaluate
from rtc.common.bc import train
from rtc.common.core import prefix
from rtc.common.testlib import testing
from rtc.dd import discrete_rtc
from rtc.dd import model as dd_model

O, H, A, K = 12, 8, 3, 16


def _model(**overrides):
  model = dd_config.get_config('discrete_rtc').model
  testing.shrink_model(model)
  model.num_bins = K
  model.update(overrides)
  return model


def _policy(**overrides):
  return dd_model.make_policy(_model(**overrides), O, A)


def _fitted(**overrides):
  """A tiny policy fitted to a synthetic obs -> chunk mapping (confident:
  its decoding order is not random), its params and data."""
  policy = _policy(**overrides)
  obs, chunks = testing.synthetic_chunks(0, 64, O, H, A)
  params, losses, _ = testing.fit(policy, obs, chunks, 150, 1e-2)
  return policy, params, obs, chunks, losses


class NetworkAndLossTest(absltest.TestCase):

  def test_parameter_tree_is_the_recipes(self):
    policy = _policy()
    self.assertIsInstance(policy, discrete_rtc.DiscreteRTCPolicy)
    shapes = policy.param_shapes()
    c = testing.TINY_BACKBONE['channel_dim']
    root = shapes['discrete_rtc']
    self.assertEqual(root['bin_embed'].shape, (K + 1, c // 2))
    self.assertEqual(root['in_proj_w'].shape, (c // 2 + O, c))
    self.assertEqual(root['null_cond'].shape, (c,))
    self.assertEqual(shapes['discrete_rtc/pack_tokens']['w'].shape,
                     (A * c, c))
    self.assertEqual(shapes['discrete_rtc/out_proj']['w'].shape, (c, A * K))
    self.assertFalse(any('time_mlp' in k for k in shapes))

  def test_no_time_input(self):
    policy = _policy()
    params = testing.perturbed_params(policy)
    obs = jax.random.normal(jax.random.key(0), (2, O))
    x = jax.random.randint(jax.random.key(1), (2, H, A), 0, K + 1)
    masked = jnp.full_like(x, K)
    np.testing.assert_array_equal(policy._apply(params, obs, x, 0.1),
                                  policy._apply(params, obs, x, 0.9))
    # The mask token has its own learned row: it changes the logits.
    self.assertGreater(float(jnp.max(jnp.abs(
        policy.logits(params, obs, x) - policy.logits(params, obs, masked)))),
                       1e-3)

  def test_loss_is_masked_cross_entropy_per_example_plus_l1(self):
    policy = _policy()
    params = testing.perturbed_params(policy)
    obs, action = testing.synthetic_chunks(1, 16, O, H, A)
    key = jax.random.key(5)
    masked = np.asarray(policy.mask_for_training(key, 16))
    x0 = policy.to_bins(action)
    logits = policy.logits(params, obs, jnp.where(masked, K, x0))
    logp = np.asarray(jax.nn.log_softmax(logits))
    nll = -np.take_along_axis(logp, np.asarray(x0)[..., None], -1)[..., 0]
    ce = np.mean([nll[i][masked[i]].mean() for i in range(16)])
    centres = np.asarray(policy.from_bins(jnp.arange(K)))
    l1 = np.abs((np.exp(logp) * centres).sum(-1) - np.asarray(action)).mean()
    loss, metrics = policy.loss_and_metrics(params, key, obs, action)
    np.testing.assert_allclose(float(loss), ce + 0.1 * l1, rtol=1e-5)
    np.testing.assert_allclose(float(metrics['l1']), l1, rtol=1e-5)
    # Per example, not per token of the batch.
    self.assertGreater(abs(ce - nll[masked].mean()), 1e-4)

  def test_mask_ratio_follows_the_cosine_schedule(self):
    # E[1 - cos(pi u / 2)] = 1 - 2 / pi = 0.363 (linear: 0.5); 4096
    # examples of 24 tokens: standard error 0.005, tolerance 0.02.
    masked = _policy().mask_for_training(jax.random.key(0), 4096)
    share = float(jnp.mean(masked))
    self.assertAlmostEqual(share, 1 - 2 / np.pi, delta=0.02)
    self.assertTrue(bool(jnp.all(jnp.sum(masked, (1, 2)) >= 1)))

  def test_simulated_delay_prefix_is_never_masked(self):
    policy = _policy(simulated_delay=8)
    key = jax.random.key(3)
    masked = policy.mask_for_training(key, 256)
    delay = prefix.sample_delays(jax.random.split(key, 3)[2], 256, 8)
    prefix_mask = jnp.arange(H)[None, :] < delay[:, None]
    self.assertTrue(bool(jnp.any(prefix_mask)))
    self.assertFalse(bool(jnp.any(masked & prefix_mask[..., None])))


class RealtimeTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.full_policy, cls.params, cls.obs, cls.chunks, cls.losses = _fitted(
        early_stop=False)
    cls.early_policy = _policy(early_stop=True)
    # Compiled once each; d, s and the key are traced.
    cls.jitted = {p: jax.jit(lambda key, d, s, p=p: p.prefixed(
        cls.params, key, cls.obs, 8, cls.chunks, d, s))
                  for p in (cls.full_policy, cls.early_policy)}

  def _prefixed(self, policy, d, s, key):
    return self.jitted[policy](key, d, s)

  @parameterized.parameters((1, 1), (2, 2), (3, 3), (1, 4))
  def test_early_stop_equals_full_decoding_where_it_is_used(self, d, s):
    # Same keys: positions < d + s exactly equal full decoding's
    # (tolerance 0) over 10 seeds, so their distribution is the same;
    # positions beyond are bin centres (filled), never the mask token's.
    centres = np.asarray(self.full_policy.from_bins(jnp.arange(K)))
    steps = []
    for seed in range(10):
      key = jax.random.key(seed)
      early, run = self._prefixed(self.early_policy, d, s, key)
      full, full_run = self._prefixed(self.full_policy, d, s, key)
      np.testing.assert_array_equal(early[:, :d + s], full[:, :d + s])
      self.assertTrue(np.isin(np.asarray(early), centres).all())
      self.assertEqual(int(full_run), 8)
      steps.append(int(run))
    # Fewer steps only once every chunk of the batch (64 here) has its first
    # d + s positions unmasked: rtc/dd/maskgit_test.py checks when.
    self.assertTrue(all(1 <= r <= 8 for r in steps))

  def test_prefix_is_the_previous_chunks_bins(self):
    policy = self.early_policy
    out = policy.realtime_action(self.params, jax.random.key(0), self.obs,
                                 4, self.chunks, 3, H - 3)
    np.testing.assert_array_equal(
        out[:, :3], policy.from_bins(policy.to_bins(self.chunks[:, :3])))
    tt = policy.training_time_action(self.params, jax.random.key(0),
                                     self.obs, 4, self.chunks, 3)
    np.testing.assert_array_equal(tt[:, :3], self.chunks[:, :3])

  @parameterized.parameters(0, 3, 7)
  def test_adaptive_unmasking_runs_fewer_steps(self, d):
    policy = _policy(early_stop=False, adaptive_unmasking=True)
    _, run = policy.prefixed(self.params, jax.random.key(0), self.obs, 5,
                             self.chunks, d, None)
    self.assertEqual(int(run), max(1, 5 * (H - d) // H))

  def test_fitting_lowers_the_loss_and_naive_error(self):
    policy = self.full_policy
    self.assertLess(np.mean(self.losses[-10:]), 0.8 * self.losses[0])
    untrained = policy.init(jax.random.key(0))
    err = lambda params: float(jnp.mean(jnp.abs(policy.action(
        params, jax.random.key(0), self.obs, 8) - self.chunks)))
    self.assertLess(err(self.params), 0.8 * err(untrained))


class BadInputTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('num_bins', dict(num_bins=5000), r'model\.num_bins must be in '
       r'\[2, 4096\]'),
      ('choice_temperature', dict(choice_temperature=-0.5),
       r'model\.choice_temperature must be >= 0'))
  def test_bad_options(self, overrides, message):
    with self.assertRaisesRegex(ValueError, '^--config.' + message):
      validate.check_model(_model(**overrides), dd_model.make_policy)

  @parameterized.parameters('', 'token_levels')
  def test_early_stop_on_a_variant_without_masks(self, preset):
    model = dd_config.get_config(preset).model.to_dict()
    model['early_stop'] = True  # What --config.early_stop=True sets.
    with self.assertRaisesRegex(
        ValueError, r"^model\.early_stop is not an option of model\.variant = "
        r"'\w+' \(it is of \('masked', 'discrete_rtc'\)\)"):
      dd_model.make_policy(model, O, A)
    model = dd_config.get_config('masked').model.to_dict()
    model['adaptive_unmasking'] = True  # Masked DD's rule is early start.
    with self.assertRaisesRegex(
        ValueError, r"^model\.adaptive_unmasking is not an option of "
        r"model\.variant = 'masked' \(it is of \('discrete_rtc',\)\)"):
      dd_model.make_policy(model, O, A)

  def test_checkpoints_of_another_variant_name_both(self):
    ours = _policy()
    masked = dd_model.make_policy(testing.shrink_model(
        dd_config.get_config('masked').model), O, A)
    path = os.path.join(self.create_tempdir().full_path, 'p.pkl')
    for saved, loading, want in ((ours, masked, r'its networks: '
                                  r'discrete_rtc.*the model\'s: dd'),
                                 (masked, ours, r'its networks: dd.*the '
                                  r"model's: discrete_rtc")):
      checkpoints.save_params(path, saved.init(jax.random.key(0)))
      with self.assertRaisesRegex(ValueError, want):
        checkpoints.load_checked(path, loading.param_shapes())


class TrainEvalTest(absltest.TestCase):
  """The preset through the shared training loop and evaluation sweep."""

  def test_train_then_evaluate_with_overrides(self):
    cache.enable_compilation_cache()
    root, expert = testing.temp_expert_run(type(self))
    c = dd_config.get_config('discrete_rtc')
    c.model.num_bins = K
    testing.tiny_bc_config(c, expert, os.path.join(root, 'logs'),
                           num_epochs=1)
    run_dir = train.train_and_evaluate(c, dd_model.make_policy, 'dd',
                                       log=lambda _: None)
    e = dd_eval_config.get_config()
    e.num_evals = 4
    e.num_flow_steps = 2
    e.delays = '1'
    e.execute_horizons = '1'
    e.methods = 'naive,realtime,bid'
    e.bid.n_samples = 2
    e.early_stop = False
    e.adaptive_unmasking = True
    out = os.path.join(root, 'eval')
    path = evaluate.evaluate(e, run_dir, out, dd_model.make_policy, 'dd',
                             log=lambda _: None)
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertEqual(sorted(r['method'] for r in rows),
                     ['bid', 'naive', 'realtime'])
    with open(os.path.join(out, evaluate.SETTINGS_FILE)) as f:
      settings = f.read()
    self.assertIn('"early_stop": false', settings)
    self.assertIn('"adaptive_unmasking": true', settings)


if __name__ == '__main__':
  absltest.main()
