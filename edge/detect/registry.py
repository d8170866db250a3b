"""Which detector backend builds each `detector.type`: registered once, beside the detector, found by import.

A backend's module in edge/detect/ registers its builder with the decorator::

    @backend("yunet")
    def build(section: DetectorSection, common: CommonDetectorOptions, room: bool) -> FaceDetector:
        ...

``section`` is the whole `detector` section (a backend may read several sub-sections: type
blazeface reads `blazeface` and `blazeface_full`), ``common`` the options every backend takes,
``room`` whether this is the room search or the kiosk pass (edge/detect/profile.py runs both).
:func:`discover` imports every module of edge/detect/, so a backend is found by being a file there;
its options are a module of edge/config/detectors/.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge.config.detector import CommonDetectorOptions, DetectorSection
from edge.detect.base import FaceDetector
from edge.interpreter import ModelError

Builder = Callable[[DetectorSection, CommonDetectorOptions, bool], FaceDetector]


@dataclass(frozen=True)
class Backend:
    """A registered backend: its builder and, optionally, when its kiosk pass and room search are one search."""

    name: str
    build: Builder
    one_search: Callable[[DetectorSection], bool] | None = None


_BACKENDS: dict[str, Backend] = {}


def backend(name: str, one_search: Callable[[DetectorSection], bool] | None = None) -> Callable[[Builder], Builder]:
    """Register the decorated builder for `type: name`.

    ``one_search(section)``: true when the kiosk pass and the room search would be the same search,
    so profile auto runs one detector instead of two (Haar with equal widths).
    """
    def register(build: Builder) -> Builder:
        known = _BACKENDS.get(name)
        if known is not None and (known.build.__module__, known.build.__qualname__) != \
                (build.__module__, build.__qualname__):     # the same function imported again is no clash
            raise ValueError(f"detector backend {name!r} registered twice: {known.build.__module__} "
                             f"and {build.__module__}")
        _BACKENDS[name] = Backend(name, build, one_search)
        return build
    return register


def discover(path: Iterable[str], package: str) -> None:
    """Import every module of the package at ``path`` (edge/detect/), by name: their ``@backend``s register."""
    for info in sorted(pkgutil.iter_modules(path, f"{package}."), key=lambda m: m.name):
        importlib.import_module(info.name)


def find(name: str) -> Backend:
    """The backend registered for `type: name`; ModelError in one line when none is."""
    found = _BACKENDS.get(name)
    if found is None:
        raise ModelError(f"detector type {name!r} has options (edge/config/detectors/) but no backend: no module "
                         f"of edge/detect/ registers one with @backend({name!r})")
    return found
