"""Level ids, named level sets and worlds directories, without Kinetix.

A level is named by its path relative to a worlds directory, e.g.
`l/grasp_easy.json` (rtc.common.env.envs loads it). These helpers import no
Kinetix, so binaries can check their level options before the seconds that
importing Kinetix takes.
"""

import importlib.util
import os

# The paper's 12 levels, in the earlier implementation's order.
PAPER_LEVELS = (
    'l/grasp_easy.json', 'l/catapult.json', 'l/cartpole_thrust.json',
    'l/hard_lunar_lander.json', 'l/mjc_half_cheetah.json',
    'l/mjc_swimmer.json', 'l/mjc_walker.json', 'l/h17_unicycle.json',
    'l/chain_lander.json', 'l/catcher_v3.json', 'l/trampoline.json',
    'l/car_launch.json')
# The 8 of them that kinetix-env ships (usable without a worlds directory).
PACKAGED_PAPER_LEVELS = (
    'l/grasp_easy.json', 'l/hard_lunar_lander.json', 'l/mjc_half_cheetah.json',
    'l/mjc_swimmer.json', 'l/mjc_walker.json', 'l/h17_unicycle.json',
    'l/chain_lander.json', 'l/car_launch.json')
LEVEL_SETS = {'paper': PAPER_LEVELS, 'paper_packaged': PACKAGED_PAPER_LEVELS}


def package_worlds_dir() -> str:
  """The level directory shipped inside kinetix-env (found without importing
  Kinetix, which takes seconds and starts JAX's backend)."""
  spec = importlib.util.find_spec('kinetix')
  if spec is None or not spec.submodule_search_locations:
    raise ModuleNotFoundError('kinetix-env is not installed: run '
                              'tools/setup.sh.')
  return os.path.join(os.path.abspath(spec.submodule_search_locations[0]),
                      'levels')


def parse_levels(spec) -> tuple[str, ...]:
  """Level ids from a comma-separated string, a named set or a sequence.

  `paper` and `paper_packaged` name the sets above; ids without `.json` get it.
  """
  if isinstance(spec, str):
    items = [s.strip() for s in spec.split(',') if s.strip()]
  else:
    items = [str(s).strip() for s in spec]
  out = []
  for item in items:
    if item in LEVEL_SETS:
      out.extend(LEVEL_SETS[item])
    else:
      out.append(item if item.endswith('.json') else item + '.json')
  if not out:
    raise ValueError('No levels given: set --config.levels, e.g. '
                     '--config.levels=s/h0_weak_thrust or =paper.')
  if len(set(out)) != len(out):
    raise ValueError(f'Levels listed twice in {out}.')
  return tuple(out)


def level_name(level_id: str) -> str:
  """`l/grasp_easy.json` -> `worlds_l_grasp_easy` (DESIGN §10)."""
  stem = level_id[:-len('.json')] if level_id.endswith('.json') else level_id
  return 'worlds_' + stem.strip('/').replace('/', '_')


def resolve_worlds_dir(worlds_dir: str | None) -> str:
  if not worlds_dir:
    return package_worlds_dir()
  if not os.path.isdir(worlds_dir):
    raise FileNotFoundError(
        f'Worlds directory {worlds_dir} does not exist: point '
        '--config.worlds_dir at a folder holding l/*.json (or leave it empty '
        'for the levels kinetix-env ships).')
  return os.path.abspath(worlds_dir)
