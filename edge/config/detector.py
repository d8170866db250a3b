"""Section `detector`: which backend (`type`), what the camera sees (`profile`), and each backend's options.

The section is assembled from the backends found in edge/config/detectors/ (one module per backend,
each declaring its options classes, its sub-sections and the `type` values it offers): adding a
backend adds files, it edits nothing here. Every backend's options live in its own sub-section
(`blazeface`, `blazeface_full`, `yunet`, `haar`, ...), which is valid whatever `type` says, so
switching detector is a one-line change of `type`. The older flat form
(`detector: {type: haar, min_neighbors: 3}`) is still read: a backend key at the top of the section
goes to that backend's sub-section.

`profile` says what the camera sees: `kiosk` (faces within about 2 m: one fast pass), `room` (a
shop, a lobby, a ceiling: faces down to about 20 px, several model runs per frame) or `auto`
(the kiosk pass first; the room search when it finds nobody, for `room_hold_s` after a far face,
and every `room_probe_s` meanwhile). edge/detect/profile.py implements it.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, create_model, model_validator

from edge.config.base import StrictModel
from edge.config.detectors import Plugin, discover
from edge.config.detectors.blazeface import BlazeFaceFullOptions, BlazeFaceOptions
from edge.config.detectors.haar import HaarOptions
from edge.config.detectors.yunet import YuNetOptions

#: The `type` of a detector section that does not say (and of the built-in defaults).
DEFAULT_TYPE = "blazeface"


class CommonDetectorOptions(StrictModel):
    """Options every detector backend accepts."""

    min_score: float = Field(0.4, ge=0.0, le=1.0, description="Drop faces the detector is less sure of than this "
                             "(0..1). Faces under tracking.new_track_score only continue a track already there.")
    max_faces: int = Field(30, ge=1, description="Keep at most this many faces per frame, the largest first.")
    min_face_px: int = Field(20, ge=8, description="Ignore faces narrower than this many pixels in the full frame "
                             "(quality.min_face_px decides which are big enough to classify).")


class _DetectorSectionBase(CommonDetectorOptions):
    """The part of the section that is no backend's: the profile and the Haar fallback."""

    profile: Literal["auto", "kiosk", "room"] = Field("auto", description="What the camera sees: 'kiosk' (faces "
                                                      "within about 2 m), 'room' (small, far faces), or 'auto'.")
    room_probe_s: float = Field(10.0, ge=0.0, description="auto: while the kiosk pass finds faces, also run the "
                                "room search this often (seconds; 0: never), to notice far faces behind a near one.")
    room_hold_s: float = Field(10.0, ge=0.0, description="auto: after the room search found a face too small for "
                               "the kiosk pass, keep searching the room for this long (seconds).")
    fallback_to_haar: bool = Field(True, description="If the model cannot be opened, say so in one line and use "
                                   "the Haar detector (with the `haar` options) instead of stopping.")

    @model_validator(mode="before")
    @classmethod
    def _flat_keys(cls, data: Any) -> Any:
        """The older flat form: a backend key at the top level goes into that backend's sub-section."""
        if not isinstance(data, dict):
            return data
        own = cls.model_fields.get("type")
        backend = data.get("type", own.default if own is not None else None)
        keys = FLAT_KEYS.get(backend, set()) if isinstance(backend, str) else set()
        flat = {k: data[k] for k in keys if k in data}
        if not flat:
            return data
        data = {k: v for k, v in data.items() if k not in flat}
        section = FLAT_SECTION[backend]
        sub = data.get(section)
        data[section] = {**(sub if isinstance(sub, dict) else {}), **flat}
        return data


def _checked(plugins: list[Plugin]) -> list[Plugin]:
    """The plugins, or TypeError naming a clash: two backends offering one name, a flat form with no sub-section."""
    sections = [s.name for p in plugins for s in p.sections]
    types = [t.name for p in plugins for t in p.types]
    for kind, names in (("sub-section", sections), ("type", types)):
        if (twice := sorted({n for n in names if names.count(n) > 1})):
            raise TypeError(f"edge/config/detectors/: detector {kind} {', '.join(twice)} declared twice")
    if (taken := sorted(set(sections) & (set(_DetectorSectionBase.model_fields) | {"type"}))):
        raise TypeError(f"edge/config/detectors/: sub-section {', '.join(taken)} is a key of the detector section")
    if (lost := sorted(t.name for p in plugins for t in p.types if t.flat is not None and t.flat not in sections)):
        raise TypeError(f"edge/config/detectors/: the flat form of type {', '.join(lost)} names no sub-section")
    return plugins


_PLUGINS = _checked(discover())
_SECTIONS = [s for p in _PLUGINS for s in p.sections]
_OPTIONS = {s.name: s.options for s in _SECTIONS}
# the default type first: a section type's default instance is its union's first member (edge/config/app.py)
_TYPES = sorted((t for p in _PLUGINS for t in p.types), key=lambda t: t.name != DEFAULT_TYPE)

#: The values of `type`, the default first, then in the backends' order.
DETECTOR_TYPES: tuple[str, ...] = tuple(t.name for t in _TYPES)
#: Older flat form: the sub-section a type's top-level backend keys go to, and those keys (its options' names).
FLAT_SECTION: dict[str, str] = {t.name: t.flat for t in _TYPES if t.flat is not None}
FLAT_KEYS: dict[str, set[str]] = {name: set(_OPTIONS[sub].model_fields) for name, sub in FLAT_SECTION.items()}


def _choice(names: tuple[str, ...]) -> str:
    """'a', 'b' or 'c'."""
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


#: What every `type` of the detector section holds: the profile and every backend's sub-section.
DetectorSection = create_model(
    "DetectorSection", __base__=_DetectorSectionBase, __module__=__name__,
    __doc__="What every `type` of the detector section holds: the profile and every backend's sub-section.",
    **{s.name: (s.options, Field(default_factory=s.options, description=s.description)) for s in _SECTIONS})

#: The section class of each `type` (BlazeFaceConfig, YuNetConfig, HaarConfig, ...), by type.
CONFIG_CLASSES: dict[str, type[DetectorSection]] = {  # type: ignore[valid-type]
    t.name: create_model(t.class_name, __base__=DetectorSection, __module__=__name__, __doc__=t.doc,
                         type=(Literal[t.name], Field(t.name, description=f"Detector backend: {_choice(DETECTOR_TYPES)}.")))
    for t in _TYPES}

#: The `detector` config section, chosen by `type`.
DetectorConfig = Annotated[Union[tuple(CONFIG_CLASSES.values())], Field(discriminator="type")]


def with_detector_type(section: DetectorSection, backend: str) -> DetectorSection:  # type: ignore[valid-type]
    """The same detector section with another `type` (every backend's sub-section is kept)."""
    return CONFIG_CLASSES[backend].model_validate({**section.model_dump(exclude={"type"}), "type": backend})


# The names other modules import (tests, bench/, edge/detect/): the built-in backends' section classes and
# options. A new backend needs no line here: its classes are in its own module and in CONFIG_CLASSES.
BlazeFaceConfig = CONFIG_CLASSES["blazeface"]
YuNetConfig = CONFIG_CLASSES["yunet"]
HaarConfig = CONFIG_CLASSES["haar"]

__all__ = ["DEFAULT_TYPE", "DETECTOR_TYPES", "FLAT_KEYS", "FLAT_SECTION", "CONFIG_CLASSES", "CommonDetectorOptions",
           "DetectorSection", "DetectorConfig", "with_detector_type", "BlazeFaceConfig", "YuNetConfig", "HaarConfig",
           "BlazeFaceOptions", "BlazeFaceFullOptions", "YuNetOptions", "HaarOptions"]
