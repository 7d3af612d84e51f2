r"""Benchmark: a process's import of Kinetix, rtc's way against the plain way.

  bazel run //rtc/bench:import_time [-- --rounds=7]

Each round starts two fresh interpreters, one after the other: one imports
what rtc uses of Kinetix through rtc.common.env.kinetix_import (the
`__init__`s of kinetix.environment, kinetix.util, gymnax and wandb
deferred), the other the same names with plain imports, as rtc did before.
Each times its own import (after `import jax`, which both pay alike) and
its whole run. Rounds alternate which goes first, so load on a shared
machine falls on both alike. Prints every round, then the medians and
their ratio.
"""

import json
import statistics
import subprocess
import sys
import time

from absl import flags

from rtc.bench import timing
from rtc.common.base import validate
from rtc.common.cli import cli

_ROUNDS = flags.DEFINE_integer('rounds', 7, 'Rounds (two processes each).')

_PREAMBLE = 'import json, sys, time\nimport jax\nstart = time.perf_counter()\n'
_REPORT = ("print(json.dumps({'import_s': time.perf_counter() - start, "
           "'modules': len(sys.modules)}))\n")
WAYS = {
    'kinetix_import': (
        'from rtc.common.env import kinetix_import\n'
        'kinetix_import.load()\n'),
    'plain imports': (
        'from kinetix.environment import ActionType, ObservationType\n'
        'from kinetix.environment.env import make_kinetix_env\n'
        'from kinetix.environment.env_state import EnvParams, '
        'StaticEnvParams\n'
        'from kinetix.util import saving\n'),
}


def _one(code: str) -> dict:
  """{'import_s', 'modules', 'process_s'} of one fresh interpreter."""
  t0 = time.perf_counter()
  out = subprocess.run([sys.executable, '-c', _PREAMBLE + code + _REPORT],
                       capture_output=True, text=True, check=True)
  got = json.loads(out.stdout.strip().splitlines()[-1])
  got['process_s'] = time.perf_counter() - t0
  return got


def main(argv):
  del argv
  validate.check_flags({'rounds': validate.COUNT})
  runs = {way: [] for way in WAYS}
  for r in range(_ROUNDS.value):
    order = list(WAYS) if r % 2 == 0 else list(reversed(WAYS))
    for way in order:
      runs[way].append(_one(WAYS[way]))
      got = runs[way][-1]
      print(f'round {r}: {way}: import {got["import_s"]:.2f} s, process '
            f'{got["process_s"]:.2f} s, {got["modules"]} modules', flush=True)
  rows = []
  med = {}
  for way, got in runs.items():
    med[way] = {k: statistics.median(g[k] for g in got)
                for k in ('import_s', 'process_s', 'modules')}
    rows.append([way, timing.fmt(med[way]['import_s']),
                 timing.fmt(med[way]['process_s']),
                 int(med[way]['modules'])])
  print(timing.table(rows, ['import', 'median import', 'median process',
                            'modules loaded']))
  lean, plain = med['kinetix_import'], med['plain imports']
  print(f'import ratio (kinetix_import / plain): '
        f'{lean["import_s"] / plain["import_s"]:.2f}; process ratio: '
        f'{lean["process_s"] / plain["process_s"]:.2f}')


if __name__ == '__main__':
  cli.run(main)
