"""The shared MLP-Mixer backbone with adaLN-zero conditioning (DESIGN §3).

Tokens are the H positions of an action chunk. A policy passes per-token
features [B, H, F] (noisy actions for flow; for discrete diffusion bin
embeddings, as a TableLookup), the observation [B, O] and a time (), [B] or
[B, H]; the backbone returns [B, H, out_dim].

* Input projection of concat(token features, obs) to C channels. The weight is
  one [F + O, C] matrix; the observation half is applied once per example and
  broadcast over the H tokens (the same numbers as projecting the concatenation,
  at 1/H of the cost).
* `num_layers` blocks: token mixing then channel mixing, each behind a
  LayerNorm without scale/offset, modulated by (1 + scale) and + shift, with a
  gated residual (token mixing runs on the token-major [H, B * C] view:
  `token_mix`). scale/shift/gate come from a zero-initialised Linear of the
  conditioning vector, so every block is the identity at initialisation.
* Conditioning: sin-cos embedding of the time (periods 4e-3 ... 4.0), then
  Linear-swish-Linear-swish. A time of shape [B] gives per-example conditioning
  [B, C]; a time of shape [B, H] gives per-token conditioning [B, H, C], used by
  training-time RTC. Per-example conditioning is computed once per example;
  a scalar time (every sampling step) gives one conditioning vector and one
  set of modulations for the whole batch, without the per-example
  conditioning matmuls.
* Final LayerNorm with zero-initialised adaLN (scale, shift), output projection.

Parameter names (used by rtc.common.bc.checkpoints to read reference files):
`<root>/in_proj`, `<root>/time_mlp_0`, `<root>/time_mlp_1`,
`<root>/block_<i>/{token_mix_in,token_mix_out,channel_mix_in,channel_mix_out,
adaln_1,adaln_2}`, `<root>/final_adaln`, `<root>/out_proj`.
"""

import dataclasses
import math
from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp

LAYER_NORM_EPS = 1e-6
MIN_PERIOD = 4e-3
MAX_PERIOD = 4.0


@dataclasses.dataclass(frozen=True)
class MixerConfig:
  """Backbone sizes shared by every policy kind (DESIGN §3 defaults)."""
  channel_dim: int = 256
  channel_hidden_dim: int = 512
  token_hidden_dim: int = 64
  num_layers: int = 4
  action_chunk_size: int = 8
  # Training-time RTC (DESIGN §7): None disables; D draws delays in {0..D-1}.
  simulated_delay: Optional[int] = None

  def __post_init__(self):
    for field in ('channel_dim', 'channel_hidden_dim', 'token_hidden_dim',
                  'num_layers', 'action_chunk_size'):
      if getattr(self, field) < 1:
        raise ValueError(f'model.{field} must be >= 1, got '
                         f'{getattr(self, field)}.')
    if self.channel_dim % 2:
      raise ValueError(
          f'model.channel_dim must be even, got {self.channel_dim}.')
    if self.simulated_delay is not None and not (
        1 <= self.simulated_delay <= self.action_chunk_size):
      raise ValueError(
          'model.simulated_delay must be None or in [1, action_chunk_size], '
          f'got {self.simulated_delay}.')


def posemb_sincos(pos: jax.Array, dim: int, min_period: float = MIN_PERIOD,
                  max_period: float = MAX_PERIOD) -> jax.Array:
  """Sin-cos embedding [..., dim] of scalar positions [...]: sines first."""
  fraction = jnp.linspace(0.0, 1.0, dim // 2)
  period = min_period * (max_period / min_period)**fraction
  arg = pos[..., None].astype(jnp.float32) * (2 * jnp.pi / period)
  return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=-1)


def layer_norm(x: jax.Array) -> jax.Array:
  """LayerNorm over the last axis without scale or offset.

  The variance is the mean square of the centred input. The one-pass form,
  max(E[x^2] - E[x]^2, 0), differentiates into 2.4x as many backward-pass
  instructions and 14% more memory traffic per training step on XLA
  (`bazel run //rtc/bench:flow` prints the comparison).
  """
  centred = x - jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
  return centred * jax.lax.rsqrt(var + LAYER_NORM_EPS)


def _linear(size, name, with_bias=True, zero_init=False):
  w_init = (hk.initializers.Constant(0.0) if zero_init else
            hk.initializers.VarianceScaling(1.0, 'fan_in', 'truncated_normal'))
  return hk.Linear(size, with_bias=with_bias, w_init=w_init, name=name)


def _modulation(cond: jax.Array, num: int, name: str):
  """Splits a zero-initialised Linear of `cond` into `num` [B, 1|H, C] parts."""
  channels = cond.shape[-1]
  out = _linear(num * channels, name, zero_init=True)(cond)
  if out.ndim == 2:  # Per-example conditioning: broadcast over tokens.
    out = out[:, None, :]
  return jnp.split(out, num, axis=-1)


class _TokenLinear(hk.Module):
  """[H, N] -> [size, N], hk.Linear(size, with_bias=False) of the columns:
  the same parameter 'w' [H, size] and initialisation, applied as w^T @ x."""

  def __init__(self, size: int, name: str):
    super().__init__(name=name)
    self._size = size

  def __call__(self, x: jax.Array) -> jax.Array:
    w = hk.get_parameter(
        'w', [x.shape[0], self._size], x.dtype,
        init=hk.initializers.VarianceScaling(1.0, 'fan_in',
                                             'truncated_normal'))
    return w.T @ x


def token_mix(y: jax.Array, hidden_dim: int) -> jax.Array:
  """The token-mixing MLP [B, H, C] -> [B, H, C] (modules token_mix_in/out).

  It runs on the token-major [H, B * C] view: two plain matmuls whose
  [T, B * C] hidden layer (T = 8H at the paper sizes, the largest tensor of
  the network) is never transposed. Transposing the small [B, H, C]
  activations in and out instead of the hidden layer takes a training step
  from 1.07x to 0.72x the published one's time on XLA:CPU (the
  `bazel run //rtc/bench:flow` table).
  """
  batch, num_tokens, channels = y.shape
  y = jnp.swapaxes(y, 0, 1).reshape(num_tokens, batch * channels)
  y = _TokenLinear(hidden_dim, 'token_mix_in')(y)
  y = jax.nn.gelu(y)
  y = _TokenLinear(num_tokens, 'token_mix_out')(y)
  return jnp.swapaxes(y.reshape(num_tokens, batch, channels), 0, 1)


class MixerBlock(hk.Module):
  """Token mixing then channel mixing, each with adaLN-zero modulation."""

  def __init__(self, token_hidden_dim: int, channel_hidden_dim: int,
               name: Optional[str] = None):
    super().__init__(name=name)
    self._token_hidden_dim = token_hidden_dim
    self._channel_hidden_dim = channel_hidden_dim

  def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    scale1, shift1, gate1 = _modulation(cond, 3, 'adaln_1')
    scale2, shift2, gate2 = _modulation(cond, 3, 'adaln_2')

    y = layer_norm(x) * (1 + scale1) + shift1
    y = token_mix(y, self._token_hidden_dim)
    x = x + gate1 * y

    y = layer_norm(x) * (1 + scale2) + shift2
    y = _linear(self._channel_hidden_dim, 'channel_mix_in', with_bias=False)(y)
    y = jax.nn.gelu(y)
    y = _linear(channels, 'channel_mix_out', with_bias=False)(y)
    return x + gate2 * y


@dataclasses.dataclass(frozen=True)
class TableLookup:
  """Token features looked up in per-slot tables, for the input projection.

  tables [S, K, E], index [B, H, S] (ints in [0, K)): a token's features are
  concat_s tables[s, index[..., s]], shape [B, H, S * E] (discrete
  diffusion's bin embeddings, one table per action dimension). `project(w)`
  gives features @ w; when there are more lookups than table rows
  (B * H > K) it projects the tables first and gathers projected rows,
  S * K * E * C multiply-adds instead of B * H * S * E * C.
  """
  tables: jax.Array
  index: jax.Array

  @property
  def dtype(self):
    return self.tables.dtype

  @property
  def shape(self):
    slots, _, dim = self.tables.shape
    return self.index.shape[:2] + (slots * dim,)

  def features(self) -> jax.Array:
    slots = self.tables.shape[0]
    emb = self.tables[jnp.arange(slots), self.index]  # [B, H, S, E]
    return emb.reshape(self.shape)

  def project(self, w: jax.Array) -> jax.Array:
    slots, rows, dim = self.tables.shape
    batch, chunk_size = self.index.shape[:2]
    if batch * chunk_size <= rows:
      return self.features() @ w
    projected = jnp.einsum('ske,sec->skc', self.tables,
                           w.reshape(slots, dim, -1)).reshape(slots * rows, -1)
    flat = self.index + jnp.arange(slots) * rows  # Row of each lookup.
    return jnp.sum(jnp.take(projected, flat, axis=0), axis=-2)


class InputProjection(hk.Module):
  """Linear of concat(tokens [B,H,F], obs [B,O]) -> [B,H,C], one [F+O, C] weight.

  The observation half is applied once per example and broadcast over tokens.
  `tokens` is an array or a TableLookup.
  """

  def __init__(self, channels: int, name: Optional[str] = None):
    super().__init__(name=name)
    self._channels = channels

  def __call__(self, tokens: jax.Array, obs: jax.Array) -> jax.Array:
    features = tokens.shape[-1]
    in_dim = features + obs.shape[-1]
    w = hk.get_parameter(
        'w', [in_dim, self._channels], tokens.dtype,
        init=hk.initializers.VarianceScaling(1.0, 'fan_in',
                                             'truncated_normal'))
    b = hk.get_parameter('b', [self._channels], tokens.dtype, init=jnp.zeros)
    obs_part = obs @ w[features:] + b
    if isinstance(tokens, TableLookup):
      token_part = tokens.project(w[:features])
    else:
      token_part = tokens @ w[:features]
    return token_part + obs_part[:, None, :]


class MixerBackbone(hk.Module):
  """tokens [B,H,F], obs [B,O], time (), [B] or [B,H] -> [B,H,out_dim]."""

  def __init__(self, config: MixerConfig, out_dim: int,
               name: Optional[str] = None):
    super().__init__(name=name)
    self._config = config
    self._out_dim = out_dim

  def __call__(self, tokens: jax.Array, obs: jax.Array, time: jax.Array,
               out_extra=None) -> jax.Array:
    """`out_extra` = (features [B, H, F'], matrix [F', out_dim]), optional,
    adds features @ matrix to the output inside its matmul."""
    cfg = self._config
    batch, chunk_size, features = tokens.shape
    if chunk_size != cfg.action_chunk_size:
      raise ValueError(f'Expected {cfg.action_chunk_size} tokens, got '
                       f'tokens of shape {tokens.shape}.')
    if obs.shape[0] != batch or obs.ndim != 2:
      raise ValueError(f'obs must be [B={batch}, O], got {obs.shape}.')
    time = jnp.asarray(time, jnp.float32)
    if time.ndim == 0:
      # One time for the whole batch (sampling): the conditioning and the
      # adaLN modulations are computed once and broadcast over examples.
      time = time[None]
    elif time.shape not in ((batch,), (batch, chunk_size)):
      raise ValueError(f'time must be a scalar, [B] or [B, H], got '
                       f'{time.shape}.')
    # Conditioning [1|B, C] (per batch or example) or [B, H, C] (per token).
    c = cfg.channel_dim
    cond = jax.nn.swish(_linear(c, 'time_mlp_0')(posemb_sincos(time, c)))
    cond = jax.nn.swish(_linear(c, 'time_mlp_1')(cond))

    x = InputProjection(cfg.channel_dim, name='in_proj')(tokens, obs)

    for i in range(cfg.num_layers):
      x = MixerBlock(cfg.token_hidden_dim, cfg.channel_hidden_dim,
                     name=f'block_{i}')(x, cond)
    scale, shift = _modulation(cond, 2, 'final_adaln')
    x = layer_norm(x) * (1 + scale) + shift
    return OutputProjection(self._out_dim, name='out_proj')(x, out_extra)


class OutputProjection(hk.Module):
  """x @ w + b, hk.Linear's parameters and initialisation.

  A large output (discrete diffusion's A * K logits for a batch) folds b
  into the matmul as a row of w against a column of ones: on XLA:CPU the
  separate bias add over [B, H, A * K] costs about a quarter of the matmul
  (`bazel run //rtc/bench:dd` prints both). Extra terms (`project`) ride
  along the same way.
  """

  def __init__(self, size: int, name: Optional[str] = None):
    super().__init__(name=name)
    self._size = size

  def __call__(self, x: jax.Array, extra=None) -> jax.Array:
    w = hk.get_parameter(
        'w', [x.shape[-1], self._size], x.dtype,
        init=hk.initializers.VarianceScaling(1.0, 'fan_in',
                                             'truncated_normal'))
    b = hk.get_parameter('b', [self._size], x.dtype, init=jnp.zeros)
    return project(x, w, b, extra)


def project(x: jax.Array, w: jax.Array, b: jax.Array,
            extra=None) -> jax.Array:
  """x @ w + b (+ features @ matrix for extra = (features, matrix)).

  When the output [N, out] outgrows what folding copies (x [N, C] and w
  [C, out]), one matmul of [x, 1, features] against [w; b; matrix] instead
  of separate passes over the output; otherwise (a small batch) the plain
  form, whose matmul is the faster one there.
  """
  rows, channels, size = math.prod(x.shape[:-1]), w.shape[0], w.shape[1]
  if rows * channels + channels * size >= rows * size:
    out = x @ w + b
    if extra is not None:
      out = out + extra[0].astype(x.dtype) @ extra[1].astype(w.dtype)
    return out
  inputs = [x, jnp.ones(x.shape[:-1] + (1,), x.dtype)]
  rows = [w, b[None]]
  if extra is not None:
    features, matrix = extra
    inputs.append(features.astype(x.dtype))
    rows.append(matrix.astype(w.dtype))
  return jnp.concatenate(inputs, axis=-1) @ jnp.concatenate(rows, axis=0)
