"""kinetix_import.load: the same objects as the plain imports, less loaded.

Each case runs in a fresh interpreter (what a process has imported cannot
be undone in this one).
"""

import json
import subprocess
import sys

from absl.testing import absltest

# Prints what was loaded after load(), then the identities a full import
# of each deferred package gives later in the same process.
_PROBE = """
import json, sys
from rtc.common.env import kinetix_import
{setup}
k = kinetix_import.load()
after_load = sorted(m for m in ('gymnax.environments.bsuite', 'seaborn',
                                'wandb.sdk', 'kinetix.environment.ued.ued',
                                'kinetix.util.learning') if m in sys.modules)
import gymnax, gymnax.environments.environment as ge, wandb
import kinetix.environment as ke, kinetix.util as ku
from kinetix.environment import env_state
print(json.dumps({{
    'after_load': after_load,
    'gymnax_env_params': gymnax.EnvParams is ge.EnvParams,
    'gymnax_env_state': gymnax.EnvState is ge.EnvState,
    'gymnax_make': callable(gymnax.make),
    'bsuite_later': 'gymnax.environments.bsuite' in sys.modules,
    'wandb_init': callable(wandb.init),
    'action_type': ke.ActionType is k.ActionType,
    'observation_type': ke.ObservationType is k.ObservationType,
    'make_env': ke.make_kinetix_env is k.make_kinetix_env,
    'env_params': env_state.EnvParams is k.EnvParams,
    'saving': ku.saving is k.saving,
}}))
"""


def _probe(setup=''):
  out = subprocess.run([sys.executable, '-c', _PROBE.format(setup=setup)],
                       capture_output=True, text=True, check=True,
                       env={'PYTHONPATH': ':'.join(p for p in sys.path if p),
                            'JAX_PLATFORMS': 'cpu'})
  return json.loads(out.stdout.strip().splitlines()[-1])


class KinetixImportTest(absltest.TestCase):

  def test_deferred_packages_load_in_full_on_first_use(self):
    got = _probe()
    self.assertEqual(got.pop('after_load'), [])
    self.assertEqual(got, {k: True for k in got})

  def test_other_layout_falls_back_to_the_plain_imports(self):
    # A name that is no package stands for a kinetix-env laid out otherwise.
    got = _probe("kinetix_import.DEFERRED += ('kinetix.environment.env',)")
    # The plain imports ran: kinetix.environment's __init__ loaded ued.
    self.assertIn('kinetix.environment.ued.ued', got.pop('after_load'))
    self.assertEqual(got, {k: True for k in got})


if __name__ == '__main__':
  absltest.main()
