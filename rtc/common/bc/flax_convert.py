"""The earlier Flax implementation's pickles -> rtc's Haiku parameters.

* flow policies (`in_proj`, `time_mlp`, `mlp_stack`, `final_adaln`, `out_proj`)
  -> the backbone's names under `flow/` (see rtc.common.core.backbone);
* PPO experts (`actor`, `critic`, `logstd`) -> `agent/actor_<i>`,
  `agent/critic_<i>`, `agent/logstd` (see rtc.expert.agent).

Kernels are [in, out] in both, so weights are copied unchanged. DESIGN §10.
rtc.common.bc.checkpoints.load_params applies these on load.
"""

import numpy as np

FLOW_ROOT = 'flow'
EXPERT_ROOT = 'agent'


def is_reference_flow(tree) -> bool:
  return isinstance(tree, dict) and 'mlp_stack' in tree and 'in_proj' in tree


def is_reference_expert(tree) -> bool:
  return isinstance(tree, dict) and {'actor', 'critic', 'logstd'} <= set(tree)


def _linear(d):
  out = {'w': np.asarray(d['kernel'], np.float32)}
  if d.get('bias') is not None:
    out['b'] = np.asarray(d['bias'], np.float32)
  return out


def _layers(d):
  """`{'layers': {0: ..., 2: ...}}` (nnx.Sequential) -> ordered Linears."""
  layers = d['layers'] if 'layers' in d else d
  return [layers[k] for k in sorted(layers, key=int)
          if isinstance(layers[k], dict) and 'kernel' in layers[k]]


def convert_reference_flow(tree, root: str = FLOW_ROOT) -> dict:
  """Earlier implementation's flow-policy dict -> rtc Haiku params."""
  out = {f'{root}/in_proj': _linear(tree['in_proj'])}
  for i, layer in enumerate(_layers(tree['time_mlp'])):
    out[f'{root}/time_mlp_{i}'] = _linear(layer)
  for i in sorted(tree['mlp_stack'], key=int):
    block = tree['mlp_stack'][i]
    for name in ('token_mix_in', 'token_mix_out', 'channel_mix_in',
                 'channel_mix_out', 'adaln_1', 'adaln_2'):
      out[f'{root}/block_{int(i)}/{name}'] = _linear(block[name])
  out[f'{root}/final_adaln'] = _linear(tree['final_adaln'])
  out[f'{root}/out_proj'] = _linear(tree['out_proj'])
  return out


def convert_reference_expert(tree, root: str = EXPERT_ROOT) -> dict:
  """Earlier implementation's PPO agent dict -> rtc Haiku params."""
  out = {}
  for part in ('actor', 'critic'):
    for i, layer in enumerate(_layers(tree[part])):
      out[f'{root}/{part}_{i}'] = _linear(layer)
  out[root] = {'logstd': np.asarray(tree['logstd'], np.float32)}
  return out
