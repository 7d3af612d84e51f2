"""Flow-matching action-chunking policy (DESIGN §4) on the shared backbone.

Time runs from 0 (Gaussian noise) to 1 (data).

* Network: v_theta(obs, x_t, t) = MixerBackbone(tokens=x_t) -> [B, H, A].
* Loss: t ~ U[0, 1], x_t = (1 - t) * noise + t * a, target a - noise, MSE.
* `action`: Euler integration, `num_steps` equal steps from noise at t = 0.
* `realtime_action` (RTC inference-time inpainting): at every Euler step, the
  denoised estimate x1 = x_t + (1 - t) * v, error e = (prev - x1) * w (w the
  prefix weights, per position), correction = VJP of x1 w.r.t. x_t applied to
  e, guidance weight min(((1 - t) / t) * (t^2 + (1 - t)^2) / (1 - t)^2,
  max_guidance_weight) (the cap at t = 0), v <- v + weight * correction.
  Examples are independent, so one batched VJP gives every example's own
  vector-Jacobian product.
* `bid_action`: rtc.common.core.bid with `action` as the sampler.
* Training-time RTC (`simulated_delay` = D): per example a delay d in
  {0..D-1} with p(d) proportional to e^-d; the first d positions are clean
  (x_t = a) with per-token time 1 and are left out of the loss.
  `training_time_action` sets those positions from the previous chunk at
  every step (time 1) and returns them exactly.

Every method is pure and jit-able with params first; `inference_delay` and
`prefix_attention_horizon` may be traced values.
"""

import jax
import jax.numpy as jnp

from rtc.common.core import backbone
from rtc.common.core import policy
from rtc.common.core import prefix

ModelConfig = backbone.MixerConfig
ROOT = 'flow'


def guidance_weight(t, max_guidance_weight):
  """min(((1-t)/t) * (t^2 + (1-t)^2) / (1-t)^2, max); t = 0 gives the cap."""
  inv_r2 = (t**2 + (1 - t)**2) / (1 - t)**2
  c = jnp.where(t > 0, (1 - t) / jnp.where(t > 0, t, 1.0), jnp.inf)
  return jnp.minimum(c * inv_r2, max_guidance_weight)


class FlowPolicy(policy.ChunkPolicy):
  """A flow-matching policy; methods are pure functions of `params`."""

  kind = 'flow'

  def __init__(self, model_config: ModelConfig, obs_dim: int,
               action_dim: int):

    def net(obs, x_t, time):
      return backbone.MixerBackbone(model_config, action_dim, name=ROOT)(
          x_t, obs, time)

    super().__init__(model_config, obs_dim, action_dim, net)

  # -- network ----------------------------------------------------------------

  def velocity(self, params, obs, x_t, time):
    """v_theta [B, H, A]; `time` a scalar, [B] or per-token [B, H]."""
    return self._apply(params, obs, x_t, time)

  def _noise(self, rng, obs, noise):
    shape = (obs.shape[0], self.chunk_size, self.action_dim)
    if noise is None:
      return jax.random.normal(rng, shape, jnp.float32)
    if noise.shape != shape:
      raise ValueError(f'noise must have shape {shape}, got {noise.shape}.')
    return noise.astype(jnp.float32)

  def _integrate(self, x0, num_steps, velocity_fn):
    dt = 1.0 / num_steps

    def step(x_t, i):
      t = i * dt
      return x_t + dt * velocity_fn(x_t, t), None

    x1, _ = jax.lax.scan(step, x0, jnp.arange(num_steps, dtype=jnp.float32))
    return x1

  # -- sampling ---------------------------------------------------------------

  def action(self, params, rng, obs, num_steps: int, noise=None):
    """Euler integration from noise: a chunk [B, H, A]."""
    x0 = self._noise(rng, obs, noise)
    return self._integrate(
        x0, num_steps, lambda x, t: self.velocity(params, obs, x, t))

  def realtime_action(self, params, rng, obs, num_steps: int, prev_chunk,
                      inference_delay, prefix_attention_horizon,
                      prefix_attention_schedule: str = 'exp',
                      max_guidance_weight: float = 5.0, noise=None):
    """RTC: guided Euler integration towards `prev_chunk`'s prefix."""
    weights = prefix.prefix_weights(inference_delay, prefix_attention_horizon,
                                     self.chunk_size, prefix_attention_schedule)
    x0 = self._noise(rng, obs, noise)

    def guided(x_t, t):
      def denoise(x):
        v = self.velocity(params, obs, x, t)
        return x + (1 - t) * v, v

      x1, vjp_fn, v = jax.vjp(denoise, x_t, has_aux=True)
      error = (prev_chunk - x1) * weights[None, :, None]
      correction = vjp_fn(error)[0]
      return v + guidance_weight(t, max_guidance_weight) * correction

    return self._integrate(x0, num_steps, guided)

  def training_time_action(self, params, rng, obs, num_steps: int,
                           prev_chunk, inference_delay, noise=None):
    """For `simulated_delay` models: the first d positions come clean from
    `prev_chunk` with per-token time 1 (DESIGN §7)."""
    mask = jnp.arange(self.chunk_size)[None, :] < inference_delay  # [1, H]
    mask = jnp.broadcast_to(mask, (obs.shape[0], self.chunk_size))
    x0 = self._noise(rng, obs, noise)

    def velocity(x_t, t):
      x_t = jnp.where(mask[..., None], prev_chunk, x_t)
      time = jnp.where(mask, 1.0, t)
      return self.velocity(params, obs, x_t, time)

    x1 = self._integrate(x0, num_steps, velocity)
    return jnp.where(mask[..., None], prev_chunk, x1)

  # -- training ---------------------------------------------------------------

  def loss_and_metrics(self, params, rng, obs, action):
    """Flow-matching MSE (and per-example metrics for logging)."""
    self.check_action(obs, action)
    noise_rng, time_rng, delay_rng = jax.random.split(rng, 3)
    batch = obs.shape[0]
    time = jax.random.uniform(time_rng, (batch,))
    noise = jax.random.normal(noise_rng, action.shape)
    target = action - noise
    if self.config.simulated_delay is None:
      x_t = (1 - time[:, None, None]) * noise + time[:, None, None] * action
      pred = self.velocity(params, obs, x_t, time)
      loss = jnp.mean(jnp.square(pred - target))
      return loss, {'mse': loss}
    delay = prefix.sample_delays(delay_rng, batch,
                                  self.config.simulated_delay)
    mask = jnp.arange(self.chunk_size)[None, :] < delay[:, None]  # [B, H]
    token_time = jnp.where(mask, 1.0, time[:, None])
    x_t = ((1 - token_time[..., None]) * noise +
           token_time[..., None] * action)
    pred = self.velocity(params, obs, x_t, token_time)
    keep = (~mask)[..., None].astype(jnp.float32)
    loss = jnp.sum(jnp.square(pred - target) * keep) / jnp.maximum(
        jnp.sum(keep) * self.action_dim, 1.0)
    return loss, {'mse': loss, 'mean_delay': jnp.mean(delay)}


make_policy = policy.maker(FlowPolicy, ModelConfig)
