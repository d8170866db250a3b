"""Section `detector`: which backend (`type`), what the camera sees (`profile`), and each backend's options.

Every backend's options live in its own sub-section (`blazeface`, `blazeface_full`, `yunet`, `haar`),
which is valid whatever `type` says, so switching detector is a one-line change of `type`. The
older flat form (`detector: {type: haar, min_neighbors: 3}`) is still read: a backend key at the
top of the section goes to that backend's sub-section.

`profile` says what the camera sees: `kiosk` (faces within about 2 m: one fast pass), `room` (a
shop, a lobby, a ceiling: faces down to about 20 px, several model runs per frame) or `auto`
(the kiosk pass first; the room search when it finds nobody, for `room_hold_s` after a far face,
and every `room_probe_s` meanwhile). edge/detect/profile.py implements it.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from edge.config.base import StrictModel


class CommonDetectorOptions(StrictModel):
    """Options every detector backend accepts."""

    min_score: float = Field(0.4, ge=0.0, le=1.0, description="Drop faces the detector is less sure of than this "
                             "(0..1). Faces under tracking.new_track_score only continue a track already there.")
    max_faces: int = Field(30, ge=1, description="Keep at most this many faces per frame, the largest first.")
    min_face_px: int = Field(20, ge=8, description="Ignore faces narrower than this many pixels in the full frame "
                             "(quality.min_face_px decides which are big enough to classify).")


class BlazeFaceOptions(StrictModel):
    """Sub-section `blazeface`: BlazeFace short-range (the kiosk pass): faces within about 2 m."""

    model_path: str = Field("", description="Path of face_detection_short_range.tflite; empty: look in "
                            "$FER_EDGE_MODELS, /var/lib/fer-edge/models, ~/.cache/fer-edge/models "
                            "(put there by deploy/fetch_models.py).")
    verify_sha256: bool = Field(True, description="Check the model file against its pinned sha256 when loading "
                                "(catches truncated or swapped files).")
    threads: int = Field(1, ge=1, le=16, description="Interpreter threads for the detector.")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0, description="Boxes overlapping more than this are merged "
                           "(weighted by score) into one face.")
    tile_px: int = Field(0, ge=0, description="0: search the whole frame in one pass (faces down to about a "
                         "seventh of its longer side). N: also search overlapping N-pixel tiles (faces down to "
                         "about N/6 px, one more model run per tile).")


class BlazeFaceFullOptions(StrictModel):
    """Sub-section `blazeface_full`: BlazeFace full-range (the room search of type blazeface): faces to ~5 m."""

    model_path: str = Field("", description="Path of face_detection_full_range.tflite; empty: the models "
                            "directories, as for the short-range model (deploy/fetch_models.py fetches both).")
    verify_sha256: bool = Field(True, description="Check the model file against its pinned sha256 when loading.")
    threads: int = Field(1, ge=1, le=16, description="Interpreter threads for the detector.")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0, description="Boxes overlapping more than this are one face.")
    tiles: list[int] = Field([256, 512], max_length=4, description="Besides one pass over the whole frame, search "
                             "overlapping square tiles of these sides (pixels): a tile of N px finds faces down to "
                             "about N/12 px. [] : the whole frame only (faces down to about a twelfth of its side).")

    @model_validator(mode="after")
    def _tile_sizes(self) -> "BlazeFaceFullOptions":
        if any(t < 64 for t in self.tiles):
            raise ValueError("tiles: each tile side must be at least 64 px")
        return self


class YuNetOptions(StrictModel):
    """Sub-section `yunet`: OpenCV's YuNet (needs `python deploy/fetch_models.py --yunet` once)."""

    model_path: str = Field("", description="Path of face_detection_yunet_2023mar.onnx; empty: the models "
                            "directories (put there by `deploy/fetch_models.py --yunet`).")
    verify_sha256: bool = Field(True, description="Check the model file against its pinned sha256 when loading.")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0, description="Boxes overlapping more than this are one face.")
    kiosk_width: int = Field(320, ge=0, description="Kiosk pass: search a copy of the frame this wide (0: full size).")
    room_width: int = Field(960, ge=0, description="Room search: search a copy of the frame this wide (0: full "
                            "size). Faces narrower than about 10 px at that width are missed.")


class HaarOptions(StrictModel):
    """Sub-section `haar`: OpenCV Haar cascades (always available; slower and less accurate)."""

    cascade: str = Field("haarcascade_frontalface_default.xml",
                         description="Face cascade: a file name from OpenCV's bundled cascades, or a path.")
    scale_factor: float = Field(1.1, gt=1.0, le=2.0, description="Image pyramid step of the cascade search "
                                "(smaller finds more faces, slower).")
    min_neighbors: int = Field(5, ge=1, description="Overlapping hits a face needs to count "
                               "(higher: fewer false faces).")
    detect_width: int = Field(320, ge=0, description="Kiosk pass: search a copy of the frame downscaled to this "
                              "width (0: full size). Faces narrower than about 24*frame_width/detect_width px "
                              "are missed.")
    room_width: int = Field(0, ge=0, description="Room search: the same, for the room profile (0: full size; "
                            "about a second per 1280x720 frame on one core).")
    eyes: bool = Field(True, description="Find both eyes with the eye cascade so the aligner can level them.")
    eye_cascade: str = Field("haarcascade_eye.xml", description="Eye cascade: bundled file name or a path.")


#: Keys of the older flat form, by the sub-section they belong to.
FLAT_KEYS = {"blazeface": set(BlazeFaceOptions.model_fields),
             "haar": set(HaarOptions.model_fields), "yunet": set(YuNetOptions.model_fields)}


class DetectorSection(CommonDetectorOptions):
    """What every `type` of the detector section holds: the profile and every backend's sub-section."""

    profile: Literal["auto", "kiosk", "room"] = Field("auto", description="What the camera sees: 'kiosk' (faces "
                                                      "within about 2 m), 'room' (small, far faces), or 'auto'.")
    room_probe_s: float = Field(10.0, ge=0.0, description="auto: while the kiosk pass finds faces, also run the "
                                "room search this often (seconds; 0: never), to notice far faces behind a near one.")
    room_hold_s: float = Field(10.0, ge=0.0, description="auto: after the room search found a face too small for "
                               "the kiosk pass, keep searching the room for this long (seconds).")
    fallback_to_haar: bool = Field(True, description="If the model cannot be opened, say so in one line and use "
                                   "the Haar detector (with the `haar` options) instead of stopping.")
    blazeface: BlazeFaceOptions = Field(default_factory=BlazeFaceOptions, description="BlazeFace short-range")
    blazeface_full: BlazeFaceFullOptions = Field(default_factory=BlazeFaceFullOptions,
                                                 description="BlazeFace full-range (room search of type blazeface)")
    yunet: YuNetOptions = Field(default_factory=YuNetOptions, description="YuNet")
    haar: HaarOptions = Field(default_factory=HaarOptions, description="Haar cascades")

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
        sub = data.get(backend)
        data[backend] = {**(sub if isinstance(sub, dict) else {}), **flat}
        return data


class BlazeFaceConfig(DetectorSection):
    """Detector `type: blazeface` (default): BlazeFace short-range at a kiosk, full-range in a room."""

    type: Literal["blazeface"] = Field("blazeface", description="Detector backend: 'blazeface', 'yunet' or 'haar'.")


class YuNetConfig(DetectorSection):
    """Detector `type: yunet`: OpenCV's YuNet at both profiles (its model is fetched with --yunet)."""

    type: Literal["yunet"] = Field("yunet", description="Detector backend: 'blazeface', 'yunet' or 'haar'.")


class HaarConfig(DetectorSection):
    """Detector `type: haar`: OpenCV Haar cascades (no download needed, less accurate, eyes as the only landmarks)."""

    type: Literal["haar"] = Field("haar", description="Detector backend: 'blazeface', 'yunet' or 'haar'.")


#: The `detector` config section, chosen by `type`.
DetectorConfig = Annotated[Union[BlazeFaceConfig, YuNetConfig, HaarConfig], Field(discriminator="type")]


def with_detector_type(section: DetectorSection, backend: str) -> BlazeFaceConfig | YuNetConfig | HaarConfig:
    """The same detector section with another `type` (every backend's sub-section is kept)."""
    classes = {"blazeface": BlazeFaceConfig, "yunet": YuNetConfig, "haar": HaarConfig}
    return classes[backend].model_validate({**section.model_dump(exclude={"type"}), "type": backend})
