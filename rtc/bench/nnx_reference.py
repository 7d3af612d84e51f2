"""The published flow network, in flax nnx, for //rtc/bench:flow.

Benchmark-only. Built the way Physical-Intelligence/real-time-chunking-kinetix
(src/model.py) builds its FlowPolicy, so rtc's ratio is against what users
would otherwise run (written here from that structure, not copied):

* time embedding: sin-cos of t (periods 4e-3 ... 4.0; the outer product at
  Precision.HIGHEST), then Linear-swish-Linear-swish, once per example [B, C];
* each block computes adaLN scale/shift/gate per example and broadcasts them
  over the H tokens with `[:, None]`;
* the observation is repeated over the tokens, concatenated with x_t and
  projected by one Linear per token;
* flax LayerNorm without scale and bias (epsilon 1e-6), token-mixing MLP then
  channel-mixing MLP with gelu, gated residuals;
* final adaLN, then a Linear to A.

The loss is the published one: t ~ U[0, 1], x_t = (1 - t) noise + t a, MSE
against a - noise.
"""

import flax.nnx as nnx
import jax
import jax.numpy as jnp

from rtc.common.core import backbone


def posemb_sincos(pos, dim, min_period=backbone.MIN_PERIOD,
                  max_period=backbone.MAX_PERIOD):
  """[B] -> [B, dim], sines first; the outer product at HIGHEST precision."""
  fraction = jnp.linspace(0.0, 1.0, dim // 2)
  period = min_period * (max_period / min_period)**fraction
  arg = jnp.einsum('i,j->ij', pos, 1.0 / period * 2 * jnp.pi,
                   precision=jax.lax.Precision.HIGHEST)
  return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=-1)


class Block(nnx.Module):
  """Token mixing then channel mixing, adaLN-zero per example."""

  def __init__(self, h, c, token_hidden, channel_hidden, rngs):
    self.token_mix_in = nnx.Linear(h, token_hidden, use_bias=False, rngs=rngs)
    self.token_mix_out = nnx.Linear(token_hidden, h, use_bias=False,
                                    rngs=rngs)
    self.channel_mix_in = nnx.Linear(c, channel_hidden, use_bias=False,
                                     rngs=rngs)
    self.channel_mix_out = nnx.Linear(channel_hidden, c, use_bias=False,
                                      rngs=rngs)
    self.norm_1 = nnx.LayerNorm(c, use_scale=False, use_bias=False, rngs=rngs)
    self.norm_2 = nnx.LayerNorm(c, use_scale=False, use_bias=False, rngs=rngs)
    zeros = nnx.initializers.zeros_init()
    self.adaln_1 = nnx.Linear(c, 3 * c, kernel_init=zeros, rngs=rngs)
    self.adaln_2 = nnx.Linear(c, 3 * c, kernel_init=zeros, rngs=rngs)

  def __call__(self, x, cond):
    # cond [B, C]: modulations per example, broadcast over tokens.
    s1, b1, g1 = jnp.split(self.adaln_1(cond)[:, None], 3, axis=-1)
    s2, b2, g2 = jnp.split(self.adaln_2(cond)[:, None], 3, axis=-1)
    y = self.norm_1(x) * (1 + s1) + b1
    y = self.token_mix_out(nnx.gelu(self.token_mix_in(y.transpose(0, 2, 1))))
    x = x + g1 * y.transpose(0, 2, 1)
    y = self.norm_2(x) * (1 + s2) + b2
    y = self.channel_mix_out(nnx.gelu(self.channel_mix_in(y)))
    return x + g2 * y


class FlowNet(nnx.Module):
  """v(obs [B, O], x_t [B, H, A], time [B]) -> [B, H, A]."""

  def __init__(self, obs_dim, action_dim, config: backbone.MixerConfig,
               rngs):
    c, h = config.channel_dim, config.action_chunk_size
    self.horizon = h
    self.channels = c
    self.in_proj = nnx.Linear(action_dim + obs_dim, c, rngs=rngs)
    self.blocks = nnx.List([Block(h, c, config.token_hidden_dim,
                                  config.channel_hidden_dim, rngs)
                            for _ in range(config.num_layers)])
    self.time_mlp = nnx.Sequential(nnx.Linear(c, c, rngs=rngs), nnx.swish,
                                   nnx.Linear(c, c, rngs=rngs), nnx.swish)
    self.final_norm = nnx.LayerNorm(c, use_scale=False, use_bias=False,
                                    rngs=rngs)
    self.final_adaln = nnx.Linear(c, 2 * c,
                                  kernel_init=nnx.initializers.zeros_init(),
                                  rngs=rngs)
    self.out_proj = nnx.Linear(c, action_dim, rngs=rngs)

  def __call__(self, obs, x_t, time):
    b = obs.shape[0]
    cond = self.time_mlp(
        posemb_sincos(jnp.broadcast_to(time, (b,)), self.channels))
    obs = jnp.broadcast_to(obs[:, None], (b, self.horizon, obs.shape[-1]))
    x = self.in_proj(jnp.concatenate([x_t, obs], axis=-1))
    for block in self.blocks:
      x = block(x, cond)
    scale, shift = jnp.split(self.final_adaln(cond)[:, None], 2, axis=-1)
    return self.out_proj(self.final_norm(x) * (1 + scale) + shift)


def flow_loss(model, rng, obs, action):
  noise_rng, time_rng = jax.random.split(rng)
  t = jax.random.uniform(time_rng, (obs.shape[0],))
  noise = jax.random.normal(noise_rng, action.shape)
  x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * action
  return jnp.mean(jnp.square(model(obs, x_t, t) - (action - noise)))
