"""The flow network as the earlier implementation builds it, in flax nnx.

Benchmark-only: used by //rtc/bench:flow to compare a training step of rtc's
Haiku model with an nnx model of the same architecture and sizes, written the
way REFERENCE_FORMATS.md lays it out: the time embedding is computed per
token ([B, H, C] conditioning even when all tokens share a time), the input
projection takes the concatenation [x_t, obs] for every token, and LayerNorm
is flax's (epsilon 1e-6, one-pass variance).
"""

import flax.nnx as nnx
import jax
import jax.numpy as jnp

from rtc.common import backbone


class Block(nnx.Module):

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
    s1, b1, g1 = jnp.split(self.adaln_1(cond), 3, axis=-1)
    s2, b2, g2 = jnp.split(self.adaln_2(cond), 3, axis=-1)
    y = self.norm_1(x) * (1 + s1) + b1
    y = self.token_mix_out(nnx.gelu(self.token_mix_in(y.transpose(0, 2, 1))))
    x = x + g1 * y.transpose(0, 2, 1)
    y = self.norm_2(x) * (1 + s2) + b2
    y = self.channel_mix_out(nnx.gelu(self.channel_mix_in(y)))
    return x + g2 * y


class FlowNet(nnx.Module):

  def __init__(self, obs_dim, action_dim, config: backbone.MixerConfig,
               rngs):
    c, h = config.channel_dim, config.action_chunk_size
    self.horizon = h
    self.channels = c
    self.in_proj = nnx.Linear(action_dim + obs_dim, c, rngs=rngs)
    self.time_mlp = nnx.Sequential(nnx.Linear(c, c, rngs=rngs), nnx.swish,
                                   nnx.Linear(c, c, rngs=rngs), nnx.swish)
    self.blocks = nnx.List([Block(h, c, config.token_hidden_dim,
                                  config.channel_hidden_dim, rngs)
                            for _ in range(config.num_layers)])
    self.final_norm = nnx.LayerNorm(c, use_scale=False, use_bias=False,
                                    rngs=rngs)
    self.final_adaln = nnx.Linear(c, 2 * c,
                                  kernel_init=nnx.initializers.zeros_init(),
                                  rngs=rngs)
    self.out_proj = nnx.Linear(c, action_dim, rngs=rngs)

  def __call__(self, obs, x_t, time):
    b = obs.shape[0]
    time = jnp.broadcast_to(time[:, None], (b, self.horizon))
    cond = self.time_mlp(backbone.posemb_sincos(time, self.channels))
    obs = jnp.broadcast_to(obs[:, None], (b, self.horizon, obs.shape[-1]))
    x = self.in_proj(jnp.concatenate([x_t, obs], axis=-1))
    for block in self.blocks:
      x = block(x, cond)
    scale, shift = jnp.split(self.final_adaln(cond), 2, axis=-1)
    return self.out_proj(self.final_norm(x) * (1 + scale) + shift)


def flow_loss(model, rng, obs, action):
  noise_rng, time_rng = jax.random.split(rng)
  t = jax.random.uniform(time_rng, (obs.shape[0],))
  noise = jax.random.normal(noise_rng, action.shape)
  x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * action
  return jnp.mean(jnp.square(model(obs, x_t, t) - (action - noise)))
