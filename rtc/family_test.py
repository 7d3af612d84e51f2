"""A third policy family goes through training, the sweep and the quickstart.

The toy family regresses the chunk on the observation with a one-layer MLP.
Its module (the text of rtc/common/testlib/toy_family.py) is written into a
new directory outside the tree, `<tmp>/toy_new_family/family.py`, and
imported from there; no file of the repository names that directory (the
test checks). One line registers it under the kind 'toy'; it is then
trained for one epoch,
evaluated at one sweep point, and trained and evaluated as a branch of the
quickstart's own plan, through the same code as flow and DD
(rtc.common.bc.train, rtc.common.bc.evaluate, rtc.quickstart), which find it in
rtc.common.core.registry. No other file knows of it.
"""

import csv
import dataclasses
import importlib
import json
import os
import shutil
import sys
import tempfile

from absl.testing import absltest

from configs import common as common_config
from configs import quickstart as quickstart_config
from rtc.common.base import cache
from rtc.common.base import paths
from rtc.common.bc import checkpoints
from rtc.common.bc import evaluate
from rtc.common.bc import summary
from rtc.common.bc import train
from rtc.common.core import registry
from rtc.common.testlib import testing
from rtc.common.testlib import toy_family as toy_module
from rtc import quickstart

toy_family = None  # The module imported from its new directory.


NEW = 'toy_new_family'


def new_family_directory(root: str):
  """Writes the toy family as `<root>/toy_new_family/family.py` (a new
  package) and imports it from there."""
  package = os.path.join(root, NEW)
  os.makedirs(package)
  with open(os.path.join(package, '__init__.py'), 'w'):
    pass
  shutil.copy(toy_module.__file__, os.path.join(package, 'family.py'))
  sys.path.insert(0, root)
  return importlib.import_module(f'{NEW}.family')


class ThirdFamilyTest(absltest.TestCase):

  def test_the_family_comes_from_its_new_directory_alone(self):
    self.assertEqual(toy_family.__name__, f'{NEW}.family')
    self.assertEqual(os.path.dirname(toy_family.__file__),
                     os.path.join(self.root, NEW))
    self.assertIs(registry.get('toy'), toy_family)
    # No file of the tree (rtc/, configs/) knows the new directory.
    tree = paths.repo_root()
    for folder in ('rtc', 'configs'):
      for d, _, files in os.walk(os.path.join(tree, folder)):
        for name in files:
          if name.endswith('.py') and name != 'family_test.py':
            with open(os.path.join(d, name)) as f:
              self.assertNotIn(NEW, f.read(), os.path.join(d, name))

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cache.enable_compilation_cache()
    cls.root = tempfile.mkdtemp()
    global toy_family
    toy_family = new_family_directory(cls.root)
    # The one line a new family needs (besides its own directory).
    registry.register('toy', toy_family)

  @classmethod
  def tearDownClass(cls):
    registry.unregister('toy')
    super().tearDownClass()

  def test_trains_one_epoch_and_runs_a_sweep_point(self):
    expert = testing.make_expert_run(os.path.join(self.root, 'expert'))
    c = toy_family.toy_train_config(expert, os.path.join(self.root, 'logs-toy'))
    run_dir = train.train_and_evaluate(c, registry.make_policy('toy'), 'toy',
                                       log=lambda _: None)

    self.assertEqual(checkpoints.epoch_dirs(run_dir), [0])
    with open(os.path.join(run_dir, 'config.json')) as f:
      run_config = json.load(f)
    self.assertEqual(run_config['kind'], 'toy')
    self.assertEqual(run_config['model'], dataclasses.asdict(toy_family.ToyConfig()))
    params = checkpoints.load_params(checkpoints.policy_path(
        run_dir, 0, 'worlds_s_h0_weak_thrust'))
    self.assertEqual(sorted(params), ['toy_in', 'toy_out'])
    mse = [v for _, v in
           summary.read_scalars(os.path.join(run_dir, 'tb'))['train/mse']]
    self.assertLen(mse, 2)  # 8 steps, logged every 4.
    self.assertLess(mse[-1], mse[0])

    e = common_config.sweep(num_evals=4, max_guidance_weight=1.0,
                            model_config=toy_family.toy_model())
    e.num_flow_steps = 1
    e.delays = '1'
    e.execute_horizons = '1'
    e.methods = 'realtime'
    path = evaluate.evaluate(e, run_dir, os.path.join(self.root, 'eval'),
                             None, 'toy', log=lambda _: None)
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertLen(rows, 1)
    row = rows[0]
    self.assertEqual((row['method'], row['delay'], row['execute_horizon']),
                     ('realtime', '1', '1'))
    self.assertBetween(float(row['returned_episode_solved']), 0.0, 1.0)
    self.assertBetween(float(row['returned_episode_lengths']), 1.0, 256.0)

  def test_runs_a_quickstart_branch(self):
    """The quickstart's own plan trains and evaluates the toy: its config
    blocks, stage estimates and label come from the family module."""
    config = quickstart_config.get_config('test')
    self.assertIn('toy', config)
    self.assertIn('toy_eval', config)
    self.assertEqual(config.toy.model.to_dict(),
                     dataclasses.asdict(toy_family.ToyConfig()))
    config.policies = 'toy'
    config.output_dir = os.path.join(self.root, 'quickstart')
    # The sweep point of the test above (realtime, d = s = 1, 4 episodes, 1
    # step): one rollout program serves both tests.
    config.eval.methods = 'realtime'
    config.eval.delays = '1'
    config.eval.num_evals = 4
    config.eval.num_flow_steps = 1
    expert_dir = os.path.join(config.output_dir, 'logs-expert',
                              quickstart.RUN_NAME)
    testing.make_expert_run(expert_dir)
    pipe = quickstart.make_pipeline(config, log=lambda _: None)
    by_id = {s.id: s for s in pipe.stages}
    self.assertEqual(by_id['toy_train'].seconds,
                     toy_family.QUICKSTART['train_seconds'])
    by_id['toy_train'].work()
    by_id['toy_eval'].work()
    with open(os.path.join(config.output_dir, 'eval_toy', 'results.csv'),
              newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([(r['method'], r['delay'], r['execute_horizon'])
                      for r in rows], [('realtime', '1', '1')])
    self.assertEqual(registry.label('toy'), 'toy regression')


if __name__ == '__main__':
  absltest.main()
