"""Every MQTT payload as a pydantic model with schema_version; `edgectl schema` exports their schemas."""

from __future__ import annotations

import time
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtimes.errors import first_error
from runtimes.manifest import Task
from runtimes.tasks import Detection, OutputSummary

from .topics import DEFAULT_MODEL

SCHEMA_VERSION: Literal[1] = 1
MAX_PAYLOAD = 1 << 20  # larger messages on a control topic are hostile or broken

State = Literal["online", "offline", "updating", "degraded"]
class Phase(str, Enum):
    """An update's phases in the order they run (docs/agent.md "Updates"), then how it ended.

    `str, Enum` rather than StrEnum, which is 3.11+: the device side runs on 3.10 (JetPack 6). The two
    methods give StrEnum's behaviour, so f-strings and logs show the value on every version."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    RECEIVED = "received"
    FETCHING = "fetching"
    VERIFYING = "verifying"
    STAGING = "staging"
    CHECKING = "checking"
    SWITCHING = "switching"
    SOAKING = "soaking"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"
    FAILED = "failed"


TERMINAL = frozenset({Phase.COMMITTED, Phase.ROLLED_BACK, Phase.REFUSED, Phase.FAILED})  # others: in progress
# After a restart: a transfer resumes; an update that had begun switching models is rolled back.
RESUMABLE = frozenset({Phase.RECEIVED, Phase.FETCHING, Phase.VERIFYING, Phase.STAGING})
INTERRUPTIBLE = frozenset({Phase.CHECKING, Phase.SWITCHING, Phase.SOAKING})
# A failure before the new model serves refuses the update; after, it rolls back.
REFUSING = RESUMABLE | {Phase.CHECKING}


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = SCHEMA_VERSION


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: int
    digest: str


class RuntimeRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    runtime: str
    device: str
    executes_on: str | None = None


class NamedModel(BaseModel):
    """A model besides the default one, bound to some of the device's cameras by name."""

    model_config = ConfigDict(extra="forbid")
    name: str
    model: ModelRef
    runtime: RuntimeRef | None = None
    update_phase: Phase | None = None


class ShadowSummary(BaseModel):
    """An update's new model against the one it replaced, on the same live frames during the soak."""

    model_config = ConfigDict(extra="forbid")
    frames: int  # frames both models answered
    agreement: float | None  # the task's measure, mean over those frames (None: none compared)
    disagreeing: int = 0  # frames whose agreement was below 0.5
    serving_p50_ms: float | None = None  # the new model, serving
    previous_p50_ms: float | None = None  # the previous one, as the shadow
    errors: int = 0
    samples: list[str] = Field(default_factory=list)  # JPEGs of disagreeing frames, on the device


class CameraBrief(BaseModel):
    """One camera in the device's status: enough for `edgectl status` to answer from retained messages."""

    model_config = ConfigDict(extra="forbid")
    connected: bool
    fps: float
    glass_p50_ms: float | None = None
    glass_p95_ms: float | None = None


class Capacity(BaseModel):
    """How many cameras like `camera` this device carries at `results_per_s` each, from measured costs: the
    fewer of what the cores allow (decode + inference CPU) and what the one thread serving the model allows."""

    model_config = ConfigDict(extra="forbid")
    cameras: int
    results_per_s: float
    camera: str  # the measured camera it is estimated for (the costliest)
    stream: str  # "1280x720@15fps"
    bound: Literal["cpu", "serving"]
    cores: int
    decode_cpu_pct: float  # per camera, % of one core
    infer_cpu_ms: float  # CPU per answer besides decoding
    serve_ms: float  # the serving thread's time per answer (wall: inference under load, post-processing)
    other_cpu_pct: float = 0.0  # other processes' CPU over the interval (% of one core), left to them
    summary: str


class ApiModelStats(BaseModel):
    """One model's requests through the device's inference API (agent/api/)."""

    model_config = ConfigDict(extra="forbid")
    requests: int = 0  # answered since the agent started
    rejected: int = 0  # refused for a full queue (429) or a missed deadline (503)
    failed: int = 0  # answered with an error (bad request, inference failure)
    rate_per_s: float = 0.0  # answered per second over the last minute
    p50_ms: float | None = None
    p95_ms: float | None = None


class Status(Message):
    device: str
    state: State
    ts: float = Field(default_factory=time.time)
    agent_version: str = ""
    groups: list[str] = Field(default_factory=list)
    hardware: dict[str, Any] = Field(default_factory=dict)
    model: ModelRef | None = None
    runtime: RuntimeRef | None = None
    other_models: list[NamedModel] = Field(default_factory=list)
    update_phase: Phase | None = None
    # Why the state is not `online` (a damaged state file, the committed model that does not serve), if known.
    reason: str | None = None
    last_change: str | None = None
    # The latest telemetry in brief, so `edgectl status` answers from retained messages alone.
    metrics: dict[str, float | None] = Field(default_factory=dict)
    telemetry_interval_s: float = 10.0
    # While an update runs: the version it installs and how much of its transfer is here (0-100).
    update_to: int | None = None
    update_progress: float | None = None
    # The last update's new model against the one it replaced, on live frames during its soak.
    shadow: ShadowSummary | None = None
    cameras: dict[str, CameraBrief] = Field(default_factory=dict)
    capacity: Capacity | None = None
    api: dict[str, ApiModelStats] = Field(default_factory=dict)  # by model name, when the API is on


class CameraQuality(BaseModel):
    """What the model's answers on one camera said about its certainty over one telemetry interval."""

    model_config = ConfigDict(extra="forbid")
    frames: int  # frames whose answer carries a confidence (classify; detect with a box)
    confidence_hist: list[int]  # every score, in equal bins over [0, 1]
    classes: dict[str, float] = Field(default_factory=dict)  # share of each label answered (the most common)
    low_confidence_share: float | None = None  # frames whose confidence is below `low_threshold`
    low_threshold: float = 0.5
    # Jensen-Shannon distance (0: the same, 1: disjoint) of this interval from the reference taken in the first
    # hours of the model on this camera: the confidence histogram, and the class mix. None: still collecting.
    drift: float | None = None
    class_drift: float | None = None
    reference_frames: int = 0


class CameraStats(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = DEFAULT_MODEL
    fps: float  # answers per second over the interval
    frames: int
    skipped: int
    connected: bool
    quality: CameraQuality | None = None
    # What the camera sends and what it costs (over the interval): frames decoded per second, their size,
    # the decoder, and the decoding thread's CPU as a percentage of one core.
    in_fps: float | None = None
    width: int | None = None
    height: int | None = None
    decoder: str | None = None
    decode_cpu_pct: float | None = None
    infer_fps: float | None = None  # the configured answer rate; None: as fast as the model goes
    # Glass to result: from the frame leaving the camera (the stream's timestamp, else its arrival) to its
    # answer handed to the messenger.
    glass_p50_ms: float | None = None
    glass_p95_ms: float | None = None


class Telemetry(Message):
    device: str
    seq: int
    ts: float
    uptime_s: float
    cameras: dict[str, CameraStats] = Field(default_factory=dict)
    fps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    runtime: str | None = None
    executes_on: str | None = None
    cpu_pct: float | None = None
    mem_mb: float | None = None
    temp_c: float | None = None
    disk_free_mb: float | None = None
    outbox_depth: int = 0
    outbox_dropped: int = 0
    # The default model's p95 once it settled after its selection: the yardstick that re-selection follows.
    p95_baseline_ms: float | None = None
    infer_cpu_ms: float | None = None  # the process's CPU per answer, decoding excluded
    capacity: Capacity | None = None
    api: dict[str, ApiModelStats] = Field(default_factory=dict)  # by model name, when the API is on


class Event(Message):
    device: str
    seq: int
    ts: float
    kind: Literal["update", "failover", "rejected", "error", "camera", "started", "selection", "command", "batching",
                  "drill", "reselect"]
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class Result(Message):
    """One camera's answer; which fields are filled depends on the bundle's task."""

    device: str
    ts: float
    camera: str
    model: str
    task: Task = "classify"
    top: list[tuple[str, float]] = Field(default_factory=list)  # classify: labels and probabilities
    detections: list[Detection] = Field(default_factory=list)  # detect: boxes (and keypoints) in frame pixels
    coverage: dict[str, float] = Field(default_factory=dict)  # segment: share of the frame per class
    outputs: list[OutputSummary] = Field(default_factory=list)  # raw: a summary per output
    latency_ms: float


class Desired(Message):
    """The model a device should run: retained, idempotent state, not a queued command."""

    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    name: str
    version: Annotated[int, Field(ge=0)]
    size: Annotated[int, Field(gt=0)]
    chunks: Annotated[int, Field(gt=0, le=100_000)]
    force: bool = False
    # Below this agreement with the model it replaces (the task's measure, on live frames during the soak),
    # the device rolls back; None: the agreement is only reported.
    min_agreement: Annotated[float, Field(ge=0, le=1)] | None = None
    # Performance gates against the model it replaces, on this device's cameras (soak vs the minute before
    # the update): the new p95 at most this many times the previous one, its fps at least this share of it.
    max_p95_ratio: Annotated[float, Field(gt=0)] | None = None
    min_fps_ratio: Annotated[float, Field(ge=0, le=1)] | None = None
    issued_at: float = Field(default_factory=time.time)
    # Where the bundle's bytes are, off the broker: a base URL laid out by `edgectl bundles layout`
    # (`<url>/<digest>/manifest.json`, `bundle.tar`). None: retained chunks on the broker.
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)] | None = None


class BundleManifest(Message):
    """Published retained beside the chunks: what to fetch and how to check each piece."""

    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(gt=0)]
    chunk_size: Annotated[int, Field(gt=0, le=256 * 1024)]
    chunk_sha256: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]]


class Command(Message):
    request_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    args: dict[str, Any] = Field(default_factory=dict)


class Reply(Message):
    request_id: str
    ok: bool
    result: Any = None
    error: str | None = None


class BundleIndex(Message):
    """Retained on one exact topic: every bundle `push` put on the broker, digest → chunk count. `gc` reads it
    where a broker does not deliver retained messages to wildcard subscriptions (RabbitMQ)."""

    bundles: dict[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")], Annotated[int, Field(gt=0)]] = Field(
        default_factory=dict)


class QualitySample(Message):
    """A low-confidence frame, for relabelling: sent (off by default) through the outbox, rate-limited."""

    device: str
    camera: str
    ts: float
    model: ModelRef
    confidence: float
    answer: dict[str, Any]  # the task's answer on this frame, as results carry it
    jpeg_b64: str


PAYLOADS: dict[str, type[Message]] = {
    "status": Status, "telemetry": Telemetry, "events": Event, "results": Result, "desired": Desired,
    "bundle-manifest": BundleManifest, "bundle-index": BundleIndex, "command": Command, "reply": Reply,
    "sample": QualitySample,
}


class BadPayload(ValueError):
    """A payload that does not parse; the message names the topic and the key."""


M = TypeVar("M", bound="Message")


def parse(model: type[M], payload: bytes | bytearray, topic: str) -> M:
    if len(payload) > MAX_PAYLOAD:
        raise BadPayload(f"{topic}: payload of {len(payload)} bytes is larger than {MAX_PAYLOAD}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise BadPayload(f"{topic}: key {key!r}: {msg}") from exc


def schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in PAYLOADS.items()}
