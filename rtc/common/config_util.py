"""Helpers for ml_collections configs shared by the binaries."""

import os

from rtc.common import paths


def default_config(name: str) -> str:
  """Absolute path of configs/<name> in the checkout (for flag defaults)."""
  return os.path.join(paths.repo_root(), 'configs', name)
