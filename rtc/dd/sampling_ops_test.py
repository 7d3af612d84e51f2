"""Both forms of the DD draw's reductions (XLA:CPU-tuned and plain) agree."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from rtc.dd import reverse
from rtc.dd import sampling_ops


def _draws(choice, logits, x_t, key):
  with sampling_ops.use(choice):
    sample = jax.jit(reverse.sample_logits)(key, logits)
    step = jax.jit(reverse.reverse_sample)(key, logits, x_t, 0.6, 0.3)
  return np.asarray(sample), np.asarray(step)


class SamplingOpsTest(parameterized.TestCase):

  def test_backend_default(self):
    # This test runs on CPU: the tuned forms.
    self.assertEqual(jax.default_backend(), 'cpu')
    self.assertTrue(sampling_ops.cpu_tuned())
    with sampling_ops.use('plain'):
      self.assertFalse(sampling_ops.cpu_tuned())
    with self.assertRaisesRegex(ValueError, 'choice must be one of'):
      with sampling_ops.use('gpu'):
        pass

  @parameterized.parameters(256, 255, 16)
  def test_reductions_agree(self, k):
    x = jax.random.normal(jax.random.key(k), (64, 8, k)) * 4
    np.testing.assert_array_equal(sampling_ops.halving_max(x),
                                  jnp.max(x, -1))
    e = jnp.exp(x - 8)
    np.testing.assert_allclose(sampling_ops.matmul_cumsum(e),
                               jnp.cumsum(e, -1), rtol=1e-5, atol=1e-30)
    with sampling_ops.use('plain'):
      np.testing.assert_array_equal(sampling_ops.max_last(x), jnp.max(x, -1))
      np.testing.assert_array_equal(sampling_ops.cumsum_last(e),
                                    jnp.cumsum(e, -1))

  @parameterized.parameters(256, 64)
  def test_same_draws(self, k):
    # 20k tokens from peaked and flat logits: every draw equal.
    key = jax.random.key(7)
    k1, k2, k3 = jax.random.split(key, 3)
    scale = jnp.linspace(0.1, 12.0, 20)[:, None, None]
    logits = jax.random.normal(k1, (20, 1000, k)) * scale
    x_t = jax.random.randint(k2, (20, 1000), 0, k)
    tuned = _draws('cpu', logits, x_t, k3)
    plain = _draws('plain', logits, x_t, k3)
    for a, b in zip(tuned, plain):
      self.assertEqual(a.shape, (20, 1000))
      np.testing.assert_array_equal(a, b)
    # The draws follow the logits (guards against both being constant).
    self.assertGreater(len(np.unique(tuned[0])), k // 2)


if __name__ == '__main__':
  absltest.main()
