"""The JSON-lines protocol between the Blender add-on and the backend worker.

One JSON object per line. Every message carries ``protocol`` (the version below) and
``type``. The client (Blender) writes to the worker's stdin; the worker answers on its
stdout, which carries nothing else. Only paths and numbers cross the pipe: frames go
through files in the job folder.

client -> worker: ``run``, ``preview``, ``cancel``, ``shutdown``
worker -> client: ``hello`` (first line, once), ``progress``, ``done``, ``error``, ``cancelled``

This module imports only the standard library (and `backend.checks`, `backend.adjustments`,
`backend.choices` and `backend.errors`, which do too), so Blender's own Python can import it.
``Run`` and ``Preview`` are the requests a job is made from, wherever it comes from (the
command line builds them from its flags too), and their ``validate()`` is the one check of
one: the command line calls it before a job starts, the worker when a request arrives, the
add-on before it sends one. A refused request raises `ProtocolError` (a
`backend.errors.RequestError`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Any, ClassVar

from ..adjustments import Adjustments
from ..checks import FPS, FRAME, FRAME_STOP, WORKERS, Number
from ..choices import PRECISIONS
from ..errors import RequestError

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 16 * 2**20  # longer lines are refused unread (docs/protocol.md)
MAX_JOB_ID_CHARS = 200
MAX_QUOTE_CHARS = 80  # what an error message quotes of a value it received
MAX_MESSAGE_CHARS = 2000  # an error message longer than this is cut (a huge path, say)


class ProtocolError(RequestError):
    """A line that is not a valid message of this protocol, or a request whose values make
    no sense (`validate`): the one refusal of a request, ``bad_message``."""


@dataclass
class Message:
    type: ClassVar[str] = ""

    def to_line(self) -> str:
        """The message as one JSON line (with its newline)."""
        data = {"protocol": PROTOCOL_VERSION, "type": self.type, **asdict(self)}
        return json.dumps(data, separators=(",", ":")) + "\n"


@dataclass
class Hello(Message):
    """The worker's handshake: what it runs on."""

    type: ClassVar[str] = "hello"
    backend_version: str
    python: str
    torch: str
    mediapipe: str
    device: str  # "cuda", "mps" or "cpu"
    gpu_name: str | None = None
    gpu_memory_total_mb: int | None = None
    gpu_memory_free_mb: int | None = None
    pid: int = 0


@dataclass
class Run(Message):
    """A transfer job: make the model's target perform the source's frames [frame_start, frame_stop)."""

    type: ClassVar[str] = "run"
    job_id: str
    source: str  # movie file or image-sequence folder
    model: str | None  # model bundle folder (null: method "nearest" without one)
    output_dir: str  # the job folder (resumable: rerunning the same job continues)
    frame_start: int = 0
    frame_stop: int | None = None  # exclusive; None = to the end
    fps: float | None = None  # for an image-sequence folder
    adjustments: Adjustments = field(default_factory=Adjustments)
    face: bool = True  # apply the face GAN residual where the bundle has one
    side_by_side: bool = False
    method: str = "generator"  # or "nearest" (the paper's nearest-neighbour baseline)
    source_stats: str | None = None  # a statistics JSON overriding the source's measured ones
    nearest_run: str | None = None  # the prepared training run folder "nearest" searches
    # Behind the person (a model with a matte): "target" (its background plate),
    # "transparent" (RGBA frames), or the path of an image or video
    background: str = "target"
    # An earlier job folder of this source (absolute): the frames it can keep are kept (its
    # files are linked into output_dir when that is new or empty; it stays as it was)
    reuse: str | None = None
    pose_workers: int | None = None  # pose detection processes; None: automatic (per core)
    # "auto" (the worker's --precision, itself auto by default: see backend.runtime), "fp32",
    # "bf16" or "fp16"; a resumed job keeps the precision that made its frames
    precision: str = "auto"

    def validate(self) -> None:
        """`ProtocolError` naming the field, the value and what is allowed (see `validate`)."""
        validate(self)


@dataclass
class Preview(Message):
    """A pose preview: the stick figure a ``run`` with the same fields would give the model's
    generator, drawn over the target's background (no network runs; see backend.pose_preview)."""

    type: ClassVar[str] = "preview"
    job_id: str
    source: str  # movie file or image-sequence folder
    model: str  # model bundle folder (its target's statistics, resolution and background)
    output_dir: str  # the preview folder (an earlier preview there is replaced)
    frame_start: int = 0
    frame_stop: int | None = None  # exclusive; None = to the end
    fps: float | None = None  # for an image-sequence folder
    adjustments: Adjustments = field(default_factory=Adjustments)
    source_stats: str | None = None  # a statistics JSON overriding the source's measured ones
    video: bool = False  # also write preview.mp4 (the frames alone are enough for Blender)
    frame_format: str = "jpg"  # of the frames: "jpg" (fast) or "png"

    def validate(self) -> None:
        validate(self)


Request = Run | Preview  # what a client asks the worker to do (a job)


@dataclass
class Progress(Message):
    type: ClassVar[str] = "progress"
    job_id: str
    stage: str  # "poses", "generate" (frames made and written), "finish" (videos closed);
    #             a preview: "poses", "draw", "finish"
    done: int
    total: int


@dataclass
class Done(Message):
    type: ClassVar[str] = "done"
    job_id: str
    frames_dir: str  # folder of 000001.png ... one per source frame of the job
    frame_count: int
    video: str | None = None  # the H.264 MP4 (a run's has the source's audio)
    side_by_side: str | None = None
    warnings: list[str] = field(default_factory=list)  # for the user: no dancer in frames ...


@dataclass
class Error(Message):
    type: ClassVar[str] = "error"
    code: str  # machine-readable: "bad_input", "bad_message", "format_version", "internal", ...
    message: str  # plain words for the user
    job_id: str | None = None


@dataclass
class Cancel(Message):
    type: ClassVar[str] = "cancel"
    job_id: str


@dataclass
class Cancelled(Message):
    type: ClassVar[str] = "cancelled"
    job_id: str


@dataclass
class Shutdown(Message):
    type: ClassVar[str] = "shutdown"


MESSAGES: dict[str, type[Message]] = {
    cls.type: cls for cls in (Hello, Run, Preview, Progress, Done, Error, Cancel, Cancelled,
                              Shutdown)
}


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text``, cut to about ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def quote(value: Any) -> str:
    """``repr(value)`` for an error message, cut short: replies never echo large input."""
    if isinstance(value, (list, dict, str)) and len(value) > MAX_QUOTE_CHARS:
        kind = {list: "a list", dict: "an object", str: "a string"}[type(value)]
        return f"{kind} of length {len(value)}"
    return shorten(repr(value), MAX_QUOTE_CHARS)


def parse_line(line: str) -> Message:
    """The message in one line; `ProtocolError` saying what is wrong otherwise."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # an integer of 5000 digits, [[[[...]]]]
        raise ProtocolError(f"not usable JSON: {shorten(str(exc), MAX_QUOTE_CHARS)}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    version = data.pop("protocol", None)
    if type(version) is not int or version != PROTOCOL_VERSION:  # not true, not 1.0
        raise ProtocolError(f"protocol version {quote(version)}, expected {PROTOCOL_VERSION}")
    kind = data.pop("type", None)
    cls = MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {quote(kind)}")
    return _build(cls, data)


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        shown = ", ".join(quote(name) for name in sorted(unknown)[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ProtocolError(f"{cls.__name__.lower()}: unknown fields {shown}{more}")
    values = dict(data)
    if cls in (Run, Preview) and isinstance(values.get("adjustments"), dict):
        values["adjustments"] = _build(Adjustments, values["adjustments"])
    try:
        message = cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ProtocolError(f"{cls.__name__.lower()}: {exc}") from None
    _check_types(message)
    return message


_SIMPLE = {"str": str, "int": int, "float": (int, float), "bool": bool}


def _is(value: Any, name: str) -> bool:
    """Whether ``value`` is of the simple type ``name`` (a bool is not a number here)."""
    return isinstance(value, _SIMPLE[name]) and not (name != "bool" and isinstance(value, bool))


def _check_types(message: Any) -> None:
    """Check each field against its annotation (the small set of types used above)."""
    for f in fields(message):
        value = getattr(message, f.name)
        allowed = [a.strip() for a in str(f.type).split("|")]
        if value is None and "None" in allowed:
            continue
        if isinstance(value, Adjustments) and "Adjustments" in allowed:
            continue
        ok = False
        for a in allowed:
            if a in _SIMPLE and _is(value, a):
                ok = True
            elif a.startswith("list[") and isinstance(value, list) and all(
                    _is(v, a[5:-1]) for v in value):
                ok = True
        if not ok:
            raise ProtocolError(f"{type(message).__name__.lower()}.{f.name}: {quote(value)} is "
                                f"not {f.type}")


# --------------------------------------------------------------------------------------------
# The check of a request: fields well-typed (`parse_line`) but making no sense
# --------------------------------------------------------------------------------------------

METHODS = ("generator", "nearest")
PREVIEW_FORMATS = ("jpg", "png")  # backend.pose_preview.run.FRAME_FORMATS (not imported: heavy)
# What each numeric field may be (the command line's flags say the same: backend/checks.py).
NUMBERS: dict[str, Number] = {"frame_start": FRAME, "frame_stop": FRAME_STOP, "fps": FPS,
                              "pose_workers": WORKERS}
PATHS = ("source", "model", "output_dir", "source_stats", "nearest_run", "reuse")
BACKGROUND_WORDS = ("target", "transparent")  # a run's background, when not a path


def validate(request: Request) -> None:
    """Raise `ProtocolError` for a ``run`` or ``preview`` whose fields make no sense (the
    message names the field, the value and what is allowed)."""
    kind = request.type
    if not request.job_id.strip():
        raise ProtocolError(f"{kind}.job_id must not be empty")
    if len(request.job_id) > MAX_JOB_ID_CHARS:
        raise ProtocolError(f"{kind}.job_id has {len(request.job_id)} characters; at most "
                            f"{MAX_JOB_ID_CHARS} are allowed")
    for name in ("source", "model", "output_dir"):
        if getattr(request, name) is not None and not getattr(request, name).strip():
            raise ProtocolError(f"{kind}.{name} must not be empty")
    for name in PATHS:
        _check_path(kind, name, getattr(request, name, None))
    if isinstance(request, Run) and request.background not in BACKGROUND_WORDS:
        _check_path(kind, "background", request.background)
    for name, number in NUMBERS.items():
        value = getattr(request, name, None)
        if value is not None and not number.accepts(value):
            raise ProtocolError(f"{kind}.{name} must be {number.allowed()}, got {quote(value)}")
    if request.frame_stop is not None and request.frame_stop <= request.frame_start:
        raise ProtocolError(f"{kind}.frame_stop ({quote(request.frame_stop)}) must be greater "
                            f"than {kind}.frame_start ({quote(request.frame_start)})")
    if isinstance(request, Run):
        _check_method(request)
        if request.precision not in PRECISIONS:
            raise ProtocolError(f"run.precision must be one of {list(PRECISIONS)}, got "
                                f"{quote(request.precision)}")
    elif request.frame_format not in PREVIEW_FORMATS:
        raise ProtocolError(f"preview.frame_format must be one of {list(PREVIEW_FORMATS)}, got "
                            f"{quote(request.frame_format)}")
    check_adjustments(request)


def check_adjustments(request: Request, n_frames: int | None = None) -> None:
    """`ProtocolError` for adjustments that `checks.adjustments_problem` refuses, for a job of
    ``n_frames`` frames (default: the request's range, when it has an end). The job's
    transfer calls it again once the source's length is known."""
    if n_frames is None and request.frame_stop is not None:
        n_frames = request.frame_stop - request.frame_start
    try:
        request.adjustments.check(n_frames, f"{request.type}.adjustments")
    except RequestError as exc:
        raise ProtocolError(str(exc)) from None


def _check_path(kind: str, name: str, path: str | None) -> None:
    """A path the worker is given: absolute on this machine (the worker's own folder means
    nothing to its client; a Windows path on Linux or macOS, or a POSIX one on Windows, would
    be a name in it) and without NUL characters (no file system takes them)."""
    if path is None:
        return
    if "\0" in path:
        raise ProtocolError(f"{kind}.{name} contains a NUL character, which no path can hold")
    if PurePath(path).is_absolute():
        return
    windows = PureWindowsPath(path).is_absolute() or path.startswith("\\")
    other = "a Windows" if windows else "a POSIX" if PurePosixPath(path).is_absolute() else None
    if other is not None:
        raise ProtocolError(f"{kind}.{name} is {other} path, and this machine runs "
                            f"{_system()}: give an absolute path of this machine, got "
                            f"{quote(path)}")
    raise ProtocolError(f"{kind}.{name} must be an absolute path, got {quote(path)}")


def _system() -> str:
    import platform

    return {"Darwin": "macOS"}.get(platform.system(), platform.system() or "another system")


def _check_method(run: Run) -> None:
    """The generator needs a model; the nearest-neighbour baseline needs a prepared run."""
    if run.method not in METHODS:
        raise ProtocolError(f"run.method must be one of {list(METHODS)}, got {quote(run.method)}")
    if run.method == "generator" and run.model is None:
        raise ProtocolError("run.model (a model bundle folder) is needed by method 'generator' "
                            "(or use method 'nearest' with run.nearest_run)")
    if run.method == "nearest" and not (run.nearest_run or "").strip():
        raise ProtocolError("run.nearest_run (a prepared training run folder) is needed by "
                            "method 'nearest'")
    if run.method == "generator" and run.nearest_run is not None:
        raise ProtocolError("run.nearest_run is for method 'nearest'; the generator draws from "
                            "run.model alone (leave nearest_run out)")
