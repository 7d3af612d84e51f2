"""Test support for multi-process jobs: binaries' flags and a free port.

Imports no JAX, so a test may set its device flags before importing JAX.
"""

import os
import re
import socket

_DEVICE_COUNT = re.compile(r'\s*--xla_force_host_platform_device_count=\S+')


def flat_options(d: dict, prefix: str = '') -> dict:
  """{'a.b': v} from nested dicts {'a': {'b': v}}."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flat_options(v, f'{prefix}{k}.'))
    else:
      out[prefix + k] = v
  return out


def config_flags(config, default) -> list[str]:
  """`--config.<key>=<value>` for every option where `config` differs."""
  base = flat_options(default.to_dict())
  return [f'--config.{k}={v}'
          for k, v in flat_options(config.to_dict()).items()
          if base.get(k) != v]


def free_port() -> int:
  """A localhost TCP port nobody listens on now (for a coordinator)."""
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def xla_flags(device_count: int) -> str:
  """This process's XLA_FLAGS with `device_count` host devices instead of
  its own count: a job's processes compile with the test's other flags
  (.bazelrc's), so their programs equal, and share cache entries with, the
  test's own."""
  base = _DEVICE_COUNT.sub('', os.environ.get('XLA_FLAGS', '')).strip()
  return f'{base} --xla_force_host_platform_device_count={device_count}'.strip()
