"""The stages there are: every `Stage` named in the `chatalign.stages` entry-point group, in pipeline order.

Our own stages are declared in pyproject.toml (`[project.entry-points."chatalign.stages"]`); a plugin package
adds a stage the same way, in its own metadata. Loading a stage object imports only its light `stage.py`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from chatalign.errors import ConfigError
from chatalign.stage import Stage

GROUP = "chatalign.stages"
# the stages live in the installed metadata: a checkout whose pyproject changed needs `pip install -e .` again
NONE_FOUND = "none found: install chatalign again (./setup.sh or pip install -e .) to register its stages"


def _load(ep: EntryPoint) -> Stage:
    where = f"entry point {ep.name} = {ep.value} ({GROUP})"
    try:
        stage = ep.load()
    except Exception as exc:  # a broken plugin: say which one, not a traceback from deep inside importlib
        raise ConfigError(f"{where}: cannot load it: {type(exc).__name__}: {exc}") from None
    if not isinstance(stage, Stage):
        raise ConfigError(f"{where}: not a chatalign.stage.Stage but {type(stage).__name__}")
    if stage.name != ep.name:
        raise ConfigError(f"{where}: the stage object is named {stage.name!r}")
    return stage


@lru_cache(maxsize=1)
def _stages() -> dict[str, Stage]:
    found: dict[str, Stage] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            raise ConfigError(f"stage {ep.name!r} is declared twice in the {GROUP} entry points "
                              "(two installed packages provide it)")
        found[ep.name] = _load(ep)
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def stages() -> list[Stage]:
    """Every stage, in pipeline order (`Stage.order`, then name)."""
    return list(_stages().values())


def names() -> list[str]:
    return list(_stages())


def get(name: str) -> Stage:
    """The stage called `name`; a ConfigError listing the known ones otherwise."""
    found = _stages()
    if name not in found:
        raise ConfigError(f"unknown stage {name!r} (one of {', '.join(found) or NONE_FOUND})")
    return found[name]


def find(name: object) -> Stage | None:
    """The stage called `name`, or None (a run directory or recipe of a stage not installed here, or none)."""
    return _stages().get(name) if isinstance(name, str) else None


def reload() -> None:
    """Forget the stages found so far (after installing a plugin in this process)."""
    _stages.cache_clear()
