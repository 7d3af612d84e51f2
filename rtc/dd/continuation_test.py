"""Synthetic continuation: does a committed prefix make the policy continue
the plan it came from? (issue 14's "Tests that can fail" table.)

Chunks (H = 8, A = 2) follow a random plan that the observation does not
reveal; the observation only says which task:
* modes: one of three constant action levels, chosen uniformly;
* line: a random offset in [-0.5, 0.5] and slope in [-0.1, 0.1] per step,
  per action dimension.
A tiny model of each variant (uniform DD with shared and with per-token
levels, masked DD with random and with confidence order and with the
'tilt' rule for soft positions, flow; the configs'
presets shrunk to 64 channels, 2 layers, K = 64 bins) is trained for
STEPS steps on both tasks at once, then given the first d = 3 positions of
a fresh plan (s = 3: prefix horizon 5, so positions 3 and 4 are soft under
the 'exp' schedule) and sampled with N = 5 steps. Reported per variant and
method over positions d..H-1: the share of chunks whose nearest mode is the
committed one, and the mean absolute error to the committed line, as a
ratio to the variant's own naive sampling. The test prints the table (the
docs/dd_variants.md's "Masked discrete diffusion" copies it) and asserts what the
variants reach with stated margins. Issue 14's goal for the best DD variant
(>= 0.95 on the modes, <= 0.5x naive's line error) is met by masked DD's
realtime with confidence order (1.00, 0.45x); with random order 0.52x.
"""

import os

# Four trainings of STEPS steps run long enough that XLA's optimisations pay
# for their compile time (.bazelrc turns them off for the other tests): on
# for the trainings, off for the 18 samplers, which run once each
# (docs/testing.md).
os.environ['JAX_DISABLE_MOST_OPTIMIZATIONS'] = '0'

import contextlib  # pylint: disable=g-import-not-at-top

from absl.testing import absltest  # pylint: disable=g-import-not-at-top
import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import optax  # pylint: disable=g-import-not-at-top

from configs import dd as dd_config  # pylint: disable=g-import-not-at-top
from rtc.dd import model as dd_model  # pylint: disable=g-import-not-at-top
from rtc.flow import model as flow_model  # pylint: disable=g-import-not-at-top

H, A, D, S, N = 8, 2, 3, 3, 5
STEPS, BATCH, EVAL = 1000, 64, 256
MODES = jnp.array([[-0.6, 0.4], [0.0, -0.5], [0.6, 0.3]])
SHRINK = dict(channel_dim=64, channel_hidden_dim=128, token_hidden_dim=16,
              num_layers=2, action_chunk_size=H)
DD_SHRINK = dict(SHRINK, num_bins=64, bin_embedding_dim=16)
CONFIDENCE = 'dd masked (confidence)'
TILT = 'dd masked (tilt)'
TOKEN_LEVELS = 'dd token levels'
VARIANTS = ('dd uniform', TOKEN_LEVELS, 'dd masked', CONFIDENCE, TILT,
            'flow')
# Sampling options on the 'masked' preset's trained model: one model for all.
MASKED_SAMPLING = {CONFIDENCE: {'unmask_order': 'confidence'},
                   TILT: {'soft_positions': 'tilt'}}


def plans(key, batch):
  """(obs [B, 2] one-hot task, chunks [B, H, A], mode [B] or -1 for line)."""
  k_task, k_mode, k_off, k_slope = jax.random.split(key, 4)
  line = jax.random.bernoulli(k_task, 0.5, (batch,))
  mode = jax.random.randint(k_mode, (batch,), 0, 3)
  offset = jax.random.uniform(k_off, (batch, 1, A), minval=-0.5, maxval=0.5)
  slope = jax.random.uniform(k_slope, (batch, 1, A), minval=-0.1, maxval=0.1)
  steps = jnp.arange(H, dtype=jnp.float32)[None, :, None] - (H - 1) / 2
  chunks = jnp.where(line[:, None, None], offset + slope * steps,
                     jnp.broadcast_to(MODES[mode][:, None], (batch, H, A)))
  obs = jax.nn.one_hot(line.astype(jnp.int32), 2)
  return obs, chunks, jnp.where(line, -1, mode)


def make(variant: str):
  if variant == 'flow':
    return flow_model.make_policy(SHRINK, 2, A)
  preset = {'dd uniform': '', TOKEN_LEVELS: 'token_levels'}.get(variant,
                                                              'masked')
  model = dict(dd_config.get_config(preset).model.to_dict(), **DD_SHRINK)
  model.update(MASKED_SAMPLING.get(variant, {}))
  return dd_model.make_policy(model, 2, A)


def train(policy, seed=0):
  params = policy.init(jax.random.key(seed))
  opt = optax.adam(optax.warmup_cosine_decay_schedule(
      0.0, 2e-3, 100, STEPS, 2e-4))
  state = opt.init(params)

  def step(carry, key):
    params, state = carry
    data_key, loss_key = jax.random.split(key)
    obs, chunks, _ = plans(data_key, BATCH)
    loss, grad = jax.value_and_grad(policy.loss)(params, loss_key, obs,
                                                 chunks)
    updates, state = opt.update(grad, state, params)
    return (optax.apply_updates(params, updates), state), loss

  keys = jax.random.split(jax.random.key(seed + 100), STEPS)
  (params, _), losses = jax.jit(lambda c: jax.lax.scan(step, c, keys))(
      (params, state))
  return params, losses


@contextlib.contextmanager
def optimisations_off():
  """XLA's expensive passes off: a sampler compiles 2-3x faster."""
  jax.config.update('jax_disable_most_optimizations', True)
  try:
    yield
  finally:
    jax.config.update('jax_disable_most_optimizations', False)


def measure(policy, params):
  """{method: (mode continuation share, line MAE)} over positions D..H-1."""
  obs, chunks, mode = plans(jax.random.key(7), EVAL)
  key = jax.random.key(8)
  samplers = {
      'naive': lambda: policy.action(params, key, obs, N),
      'realtime': lambda: policy.realtime_action(params, key, obs, N, chunks,
                                                 D, H - S, 'exp'),
      'hard_masking': lambda: policy.realtime_action(params, key, obs, N,
                                                     chunks, D, H - S,
                                                     'zeros'),
  }
  mode, chunks = np.asarray(mode), np.asarray(chunks)
  out = {}
  for name, sample in samplers.items():
    chunk = np.asarray(jax.jit(sample)())[:, D:]
    dist = np.square(chunk[:, None] - np.asarray(MODES)[None, :, None])
    nearest = dist.mean(axis=(2, 3)).argmin(axis=1)
    modes = mode >= 0
    out[name] = (float((nearest[modes] == mode[modes]).mean()),
                 float(np.abs(chunk[~modes] - chunks[~modes, D:]).mean()))
  return out


class ContinuationTest(absltest.TestCase):

  def test_committed_prefix_is_continued(self):
    rows, trained = {}, {}
    for variant in VARIANTS:
      policy = make(variant)
      # Sampling options do not change training: one model for these.
      same = 'dd masked' if variant in MASKED_SAMPLING else variant
      if same not in trained:
        trained[same], losses = train(policy)
        self.assertLess(float(losses[-100:].mean()),
                        float(losses[:100].mean()), variant)
      with optimisations_off():
        rows[variant] = measure(policy, trained[same])
    lines = ['| variant, method | modes: continue the committed mode | '
             "line: error vs naive's |", '|---|---|---|']
    for variant, res in rows.items():
      naive_err = res['naive'][1]
      for method, (share, err) in res.items():
        lines.append(f'| {variant}, {method} | {share:.2f} | '
                     f'{err / naive_err:.2f}x ({err:.3f}) |')
    print('\n'.join(lines))
    ratio = {v: {m: r[m][1] / r['naive'][1] for m in r}
             for v, r in rows.items()}
    share = {v: {m: r[m][0] for m in r} for v, r in rows.items()}
    for v in rows:  # The observation does not reveal the plan.
      self.assertLess(share[v]['naive'], 0.6, v)
    # Measured (docs/dd_variants.md "Masked discrete diffusion"; seed 0, and seed 1 in
    # brackets): masked DD (soft positions 'given') 1.00 and realtime 0.52x
    # [0.50x] (random order) or 0.45x [0.42x] (confidence order), hard
    # masking 0.61x / 0.53x; with the 'tilt' rule realtime is 0.61x [0.60x];
    # uniform DD 0.90 and 0.80x; flow 0.85 and 0.68x / 0.74x. Asserted with
    # margins of 0.05 (shares) and about 0.05-0.1 (ratios).
    limit = {'realtime': {'dd masked': 0.6, CONFIDENCE: 0.5, TILT: 0.7},
             'hard_masking': {'dd masked': 0.7, CONFIDENCE: 0.6, TILT: 0.7}}
    for m in ('realtime', 'hard_masking'):
      for masked, most in limit[m].items():
        self.assertGreaterEqual(share[masked][m], 0.95, (m, masked))
        self.assertLessEqual(ratio[masked][m], most, (m, masked))
        # Native inpainting beats the uniform model's pinning and flow's
        # guidance on both tasks.
        for other in ('dd uniform', 'flow'):
          self.assertGreater(share[masked][m], share[other][m] + 0.04,
                             (m, masked, other))
          self.assertLess(ratio[masked][m], ratio[other][m] - 0.05,
                          (m, masked, other))
      for other in ('dd uniform', 'flow'):
        self.assertGreaterEqual(share[other][m], 0.75, (m, other))
        self.assertLessEqual(ratio[other][m], 0.9, (m, other))
      # Per-token levels (committed tokens clean at level 0) beat the seed's
      # re-corrupted pins: 1.00 and 0.64x measured.
      self.assertGreaterEqual(share[TOKEN_LEVELS][m], 0.95, m)
      self.assertLessEqual(ratio[TOKEN_LEVELS][m], 0.75, m)
      self.assertGreater(share[TOKEN_LEVELS][m], share['dd uniform'][m] + 0.04,
                         m)
      self.assertLess(ratio[TOKEN_LEVELS][m], ratio['dd uniform'][m] - 0.05,
                      m)
    # Soft positions given with probability w continue the line better than
    # tilted ones (0.52x vs 0.61x; hard masking has none: equal).
    self.assertLess(ratio['dd masked']['realtime'],
                    ratio[TILT]['realtime'] - 0.05)
    self.assertAlmostEqual(ratio['dd masked']['hard_masking'],
                           ratio[TILT]['hard_masking'], delta=0.01)

if __name__ == '__main__':
  absltest.main()
