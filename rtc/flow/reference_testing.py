"""The earlier flow implementation's file format and network, for tests.

`to_reference` writes rtc parameters in the earlier implementation's pickle
layout; `reference_forward` is that implementation's network in numpy. The
flow tests check that rtc loads and evaluates such files exactly.
"""

import numpy as np


def reference_forward(ref, obs, x_t, time):
  """The earlier implementation's network, in numpy, from its file format."""
  def lin(p, x):
    y = x @ np.asarray(p['kernel'], np.float64)
    return y if p.get('bias') is None else y + np.asarray(p['bias'])

  def ln(x):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu)**2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-6)

  def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) *
                                  (x + 0.044715 * x**3)))

  def swish(x):
    return x / (1 + np.exp(-x))

  b, h, _ = x_t.shape
  c = ref['in_proj']['kernel'].shape[1]
  t = np.broadcast_to(np.asarray(time, np.float64)[:, None], (b, h))
  frac = np.linspace(0, 1, c // 2)
  period = 4e-3 * (4.0 / 4e-3)**frac
  arg = t[..., None] * 2 * np.pi / period
  emb = np.concatenate([np.sin(arg), np.cos(arg)], -1)
  cond = swish(lin(ref['time_mlp']['layers'][2],
                   swish(lin(ref['time_mlp']['layers'][0], emb))))
  obs_rep = np.broadcast_to(obs[:, None], (b, h, obs.shape[-1]))
  x = lin(ref['in_proj'], np.concatenate([x_t, obs_rep], -1))
  for i in sorted(ref['mlp_stack']):
    blk = ref['mlp_stack'][i]
    s1, sh1, g1 = np.split(lin(blk['adaln_1'], cond), 3, -1)
    s2, sh2, g2 = np.split(lin(blk['adaln_2'], cond), 3, -1)
    y = ln(x) * (1 + s1) + sh1
    y = lin(blk['token_mix_out'], gelu(lin(blk['token_mix_in'],
                                           y.transpose(0, 2, 1))))
    x = x + g1 * y.transpose(0, 2, 1)
    y = ln(x) * (1 + s2) + sh2
    y = lin(blk['channel_mix_out'], gelu(lin(blk['channel_mix_in'], y)))
    x = x + g2 * y
  scale, shift = np.split(lin(ref['final_adaln'], cond), 2, -1)
  return lin(ref['out_proj'], ln(x) * (1 + scale) + shift)


def to_reference(params, num_layers):
  """rtc Haiku params -> the earlier implementation's pickle layout."""
  def lin(name, bias=True):
    p = params[f'flow/{name}']
    return {'kernel': np.asarray(p['w']),
            'bias': np.asarray(p['b']) if bias else None}

  none = {'scale': None, 'bias': None}
  return {
      'in_proj': lin('in_proj'),
      'time_mlp': {'layers': {0: lin('time_mlp_0'), 2: lin('time_mlp_1')}},
      'mlp_stack': {i: {
          'token_mix_in': lin(f'block_{i}/token_mix_in', False),
          'token_mix_out': lin(f'block_{i}/token_mix_out', False),
          'channel_mix_in': lin(f'block_{i}/channel_mix_in', False),
          'channel_mix_out': lin(f'block_{i}/channel_mix_out', False),
          'norm_1': none, 'norm_2': none,
          'adaln_1': lin(f'block_{i}/adaln_1'),
          'adaln_2': lin(f'block_{i}/adaln_2')} for i in range(num_layers)},
      'final_norm': none,
      'final_adaln': lin('final_adaln'),
      'out_proj': lin('out_proj'),
  }
