"""Every MQTT payload as a pydantic model with schema_version; `edgectl schema` exports their schemas."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtimes.errors import first_error
from runtimes.manifest import Task
from runtimes.tasks import Detection, OutputSummary

SCHEMA_VERSION: Literal[1] = 1
MAX_PAYLOAD = 1 << 20  # larger messages on a control topic are hostile or broken

State = Literal["online", "offline", "updating", "degraded"]
Phase = Literal["received", "fetching", "verifying", "staging", "checking", "switching", "soaking",
                "committed", "rolled_back", "refused", "failed"]
TERMINAL = ("committed", "rolled_back", "refused", "failed")  # an update in any other phase is in progress


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


class CameraStats(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "default"
    fps: float
    frames: int
    skipped: int
    connected: bool


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


class Event(Message):
    device: str
    seq: int
    ts: float
    kind: Literal["update", "failover", "rejected", "error", "camera", "started", "selection", "command", "batching",
                  "drill"]
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
    issued_at: float = Field(default_factory=time.time)


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


PAYLOADS: dict[str, type[Message]] = {
    "status": Status, "telemetry": Telemetry, "events": Event, "results": Result, "desired": Desired,
    "bundle-manifest": BundleManifest, "command": Command, "reply": Reply,
}


class BadPayload(ValueError):
    """A payload that does not parse; the message names the topic and the key."""


def parse(model: type[Message], payload: bytes | bytearray, topic: str) -> Any:
    if len(payload) > MAX_PAYLOAD:
        raise BadPayload(f"{topic}: payload of {len(payload)} bytes is larger than {MAX_PAYLOAD}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise BadPayload(f"{topic}: key {key!r}: {msg}") from exc


def schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in PAYLOADS.items()}
