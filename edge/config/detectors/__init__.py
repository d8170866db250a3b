"""The detector backends' options, one module per backend; edge/config/detector.py assembles the section.

Each module of this package holds a backend's options classes (pydantic, ``StrictModel``) and
declares what it adds to the `detector` section in one module-level ``DETECTOR = Plugin(...)``:

- its sub-sections (``detector.<name>``: name, options class, description), valid whatever `type`
  says, so switching detector stays a one-line change of `type`;
- the `type` values it offers, each with the name and docstring of its section class (they show in
  the JSON schema and in error messages) and, for the older flat form
  (``detector: {type: haar, min_neighbors: 3}``), the sub-section whose keys may sit at the top;
- ``order``: where it goes in the section, the schema, the key reference and the messages.

:func:`discover` imports every module of the package (pkgutil over ``__path__``, by name), so adding
a backend's options is adding a file here; its detector registers itself in edge/detect/ (the
``@backend`` decorator of edge/detect/registry.py). The options live here, in the config layer,
and not beside the detector, so that loading a config (``fer-edge config validate``) imports no
OpenCV or TFLite and the config package imports no runtime code (docs/structure.md).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class SubSection:
    """A sub-section of `detector`: ``detector.<name>`` holds ``options``."""

    name: str
    options: type[BaseModel]
    description: str          # the field's description: the schema and the key reference show it


@dataclass(frozen=True)
class DetectorType:
    """A value of `detector.type` and its section class (``HaarConfig``: named in the schema and in errors)."""

    name: str
    class_name: str
    doc: str                  # the section class's docstring: the type's description in the schema
    flat: str | None = None   # older flat form: keys of this sub-section may sit at the top of the section


@dataclass(frozen=True)
class Plugin:
    """What one module of this package adds to the `detector` section."""

    sections: tuple[SubSection, ...]
    types: tuple[DetectorType, ...] = ()
    order: int = 100          # lowest first in the section, the schema and messages; ties: by module name


def discover() -> list[Plugin]:
    """The ``DETECTOR`` of every module of this package, by (order, module name): deterministic."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__, f"{__name__}."), key=lambda m: m.name):
        module = importlib.import_module(info.name)
        plugin = getattr(module, "DETECTOR", None)
        if not isinstance(plugin, Plugin):
            raise TypeError(f"{info.name} declares no DETECTOR = Plugin(...) (every module of {__name__} is a "
                            "detector backend's options)")
        found.append((plugin.order, info.name, plugin))
    return [plugin for _, _, plugin in sorted(found, key=lambda f: (f[0], f[1]))]
