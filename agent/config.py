"""Agent configuration: TOML or YAML, pydantic with extra="forbid", environment overrides
(EDGE_AGENT__BROKER__URL=…), then command-line flags. A bad key is named with its path."""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # the device side runs on 3.10 (JetPack 6), where tomli is the same parser
    import tomli as tomllib

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fleet.errors import FleetError
from fleet.mqtt import parse_broker_url, split_urls
from fleet.topics import (
    DEFAULT_MODEL,
    DEFAULT_PREFIX,
    DEVICE_ID_RULE,
    MODEL_NAME_RULE,
    valid_device_id,
    valid_model_name,
)
from runtimes.errors import first_error

from .api.settings import ApiConfig
from .errors import ConfigError

ENV_PREFIX = "EDGE_AGENT__"


@dataclass(frozen=True)
class ModelSpec:
    """One model this device serves, as the rest of the agent sees it: everything that makes the default
    model different from a named one is decided here, once."""

    name: str
    seed: Path | None  # served when the store has nothing committed
    source: Path | None  # a file camera of this model: selection measures the whole pipeline on it
    primary: bool  # its model, runtime and update phase are status's top-level fields

    @property
    def pointers(self) -> str:
        """Where its store pointers live under the store: the default model's in the root, where they have
        always been."""
        return "" if self.primary else f"models/{self.name}"

    @property
    def tag(self) -> str | None:
        """The `model` its events carry: none for the primary, as they always have."""
        return None if self.primary else self.name


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerConfig(Section):
    url: str = "mqtt://127.0.0.1:1883"  # one node, or several separated by commas
    urls: list[str] = Field(default_factory=list)  # the nodes in failover order (wins over `url`)
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    prefix: str = DEFAULT_PREFIX

    @field_validator("url", "urls")
    @classmethod
    def _url(cls, value: str | list[str]) -> str | list[str]:
        try:
            for url in split_urls(value):
                parse_broker_url(url)
        except FleetError as exc:
            raise ValueError(str(exc)) from exc
        return value

    def all_urls(self) -> list[str]:
        return split_urls(self.urls) or split_urls(self.url)


class CameraConfig(Section):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] = "cam0"
    # A USB index ("0"), /dev/videoN, rtsp://…, a file path, or a GStreamer pipeline ("… ! appsink").
    source: str
    model: str = DEFAULT_MODEL
    loop: bool = True
    # Files: play at their own frame rate like a camera (True) or as fast as the model takes them (False).
    realtime: bool = True
    # Answers per second from this camera (every frame is still decoded); unset: as fast as the model goes.
    infer_fps: Annotated[float, Field(gt=0)] | None = None
    # "auto": GStreamer for a pipeline string, and for rtsp:// when the probe found a hardware decoder;
    # OpenCV's FFmpeg otherwise.
    decoder: Literal["auto", "opencv", "gstreamer"] = "auto"
    # Decoder threads per camera. 1: its decode CPU is measured whole, and many cameras share the cores
    # without oversubscribing them; 0: the decoder's own choice (one big camera on many cores).
    decode_threads: Annotated[int, Field(ge=0, le=64)] = 1
    stall_s: Annotated[float, Field(gt=0)] = 5.0  # a live source silent this long is reopened
    jitter_ms: Annotated[int, Field(ge=0, le=10_000)] = 200  # RTSP jitter buffer (GStreamer decoder)


class Thresholds(Section):
    stuck_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    no_frames_s: Annotated[float, Field(gt=0)] = 10.0
    soak_s: Annotated[float, Field(ge=0)] = 20.0
    soak_min_fps_ratio: Annotated[float, Field(ge=0, le=1)] = 0.5
    # A fetch with no new chunk for this long is refused; the chunks it got stay for the next push.
    fetch_stall_s: Annotated[float, Field(gt=0)] = 60.0
    # During a soak the previous model answers a sample of the frames beside the new one, using at most this
    # share of one core, so the serving model keeps its fps (bench/watch.py measures the cost).
    shadow_budget: Annotated[float, Field(gt=0, le=1)] = 0.05


class FollowConfig(Section):
    """Selection that follows the device: the serving model's p95 per telemetry interval is watched against
    the baseline taken after its selection; a sustained change either way re-measures the candidates at low
    priority under the load the device has now; the fastest there, if it is another one, serves on trial for
    `trial_s` and stays when its p95 on the live frames beats the previous one's by `min_gain`."""

    enabled: bool = True
    ratio: Annotated[float, Field(gt=1)] = 1.5  # beyond baseline × ratio, or below baseline / ratio
    sustain_s: Annotated[float, Field(gt=0)] = 60.0
    warmup_s: Annotated[float, Field(ge=0)] = 20.0  # after a switch, before the baseline is taken
    baseline_s: Annotated[float, Field(gt=0)] = 30.0
    cooldown_s: Annotated[float, Field(ge=0)] = 600.0  # after a re-measure, before the next one may start
    min_gain: Annotated[float, Field(ge=0, lt=1)] = 0.15  # hysteresis: what a switch must gain on live frames
    trial_s: Annotated[float, Field(gt=0)] = 30.0  # how long a re-measure's nominee serves before it is judged


class QualityConfig(Section):
    """Quality telemetry per camera (on by default: it is counting), and low-confidence samples for
    relabelling (off by default: they are images of the customer's scene)."""

    enabled: bool = True
    low_confidence: Annotated[float, Field(ge=0, le=1)] = 0.5
    reference_s: Annotated[float, Field(gt=0)] = 7200.0  # the first hours of a model: what drift compares to
    samples: bool = False
    sample_interval_s: Annotated[float, Field(gt=0)] = 300.0  # at most one sample per camera this often
    sample_max_bytes: Annotated[int, Field(ge=1024)] = 150_000
    sample_max_width: Annotated[int, Field(ge=64)] = 640
    sample_quality: Annotated[int, Field(ge=1, le=100)] = 80


class SnapshotConfig(Section):
    """A JPEG of the frame on a detection, at most one per camera per interval (QoS 0: best effort)."""

    enabled: bool = False
    labels: list[str] = Field(default_factory=list)  # empty: any label
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.5
    min_interval_s: Annotated[float, Field(gt=0)] = 10.0
    quality: Annotated[int, Field(ge=1, le=100)] = 80
    max_width: Annotated[int, Field(ge=64)] = 1280


class DrillConfig(Section):
    """A failure drill (see agent/drill.py): the serving runtime fails on purpose after `after_calls`
    inferences, by raising or by hanging for `hang_s`, to prove failover on this device."""

    after_calls: Annotated[int, Field(ge=0)] | None = None  # None: no drill
    mode: Literal["raise", "hang"] = "raise"
    hang_s: Annotated[float, Field(gt=0)] = 600.0


class HomeAssistantConfig(Section):
    """MQTT discovery for Home Assistant (docs/agent.md, "Home Assistant"): off unless asked for."""

    enabled: bool = False
    prefix: Annotated[str, Field(pattern=r"^[^#+]+$")] = "homeassistant"


class AgentConfig(Section):
    device_id: str = Field(default_factory=socket.gethostname)
    groups: list[str] = Field(default_factory=list)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    bundle: Path | None = None  # the seed of the model named "default", the one `edgectl push` updates
    # More models on this device, by name, each a seed bundle; a camera's `model` picks one.
    models: dict[str, Path] = Field(default_factory=dict)
    state_dir: Path = Path("/var/lib/edge-agent")
    trusted_keys: list[Path] = Field(default_factory=list)
    # The CA that signs an https bundle server's certificate (pushes with `--http https://…`); unset: the
    # system's CAs.
    http_ca_file: Path | None = None
    allow_unsigned: bool = False
    telemetry_interval_s: Annotated[float, Field(gt=0)] = 10.0
    results_per_s: Annotated[float, Field(gt=0)] = 2.0
    selection_budget_s: Annotated[float, Field(gt=0)] = 8.0
    # A bundle never measured on this device serves at once on a safe candidate (FP32 on the CPU) while the
    # selection runs in the background, instead of serving nothing until it ends.
    fast_start: bool = True
    outbox_max_rows: Annotated[int, Field(gt=0)] = 100_000
    metrics_port: int | None = None
    # Cameras share the device's model: "auto" batches their frames when the selected artifact measurably
    # gains from it (the decision is an event), "off" runs one thread per camera.
    batching: Literal["auto", "off"] = "auto"
    # The runner-up on another runtime: "warm" is loaded at start and takes over between two frames; "lazy"
    # is loaded only when the serving runtime breaks, saving its memory (80 MB for a second runtime here)
    # at the cost of its load time during the failover (0.7 s here; the `failover` event gives it as
    # load_s). "auto": lazy on devices with less than 4 GB of memory, warm on bigger ones.
    runner_up: Literal["auto", "warm", "lazy"] = "auto"
    thresholds: Thresholds = Field(default_factory=Thresholds)
    snapshot: SnapshotConfig = Field(default_factory=SnapshotConfig)
    follow: FollowConfig = Field(default_factory=FollowConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    drill: DrillConfig = Field(default_factory=DrillConfig)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    # The inference API for other programs (agent/api/): off unless a listen address is set.
    api: ApiConfig = Field(default_factory=ApiConfig)

    def model_specs(self) -> list[ModelSpec]:
        """The default model first, then the named ones in config order."""
        seeds = {DEFAULT_MODEL: self.bundle, **self.models}
        return [ModelSpec(name, seed, self.file_source(name), name == DEFAULT_MODEL) for name, seed in seeds.items()]

    def file_source(self, model: str) -> Path | None:
        """The first camera of this model that is a file: selection then measures the whole pipeline on it."""
        for cam in self.cameras:
            if cam.model == model and Path(cam.source).is_file():
                return Path(cam.source)
        return None

    @model_validator(mode="after")
    def _camera_models(self) -> AgentConfig:
        known = {DEFAULT_MODEL, *self.models}
        for cam in self.cameras:
            if cam.model not in known:
                raise ValueError(f"camera {cam.id!r}: model {cam.model!r} is neither 'default' nor in models "
                                 f"({', '.join(sorted(self.models)) or 'none configured'})")
        return self

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not valid_model_name(name) or name == DEFAULT_MODEL:
                raise ValueError(f"model name {name!r}: {MODEL_NAME_RULE}, not {DEFAULT_MODEL!r}")
        return value

    @field_validator("device_id")
    @classmethod
    def _device(cls, value: str) -> str:
        if not valid_device_id(value):
            raise ValueError(DEVICE_ID_RULE)
        return value


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # toml and yaml raise their own error types
        raise ConfigError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/mapping")
    return data


def env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """EDGE_AGENT__BROKER__URL=mqtt://h:1883 → {"broker": {"url": "mqtt://h:1883"}}; JSON values allowed."""
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in over.items():
        result[key] = merge(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) \
            else value
    return result


def load(path: Path | None, flags: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> AgentConfig:
    """File, then environment, then flags; every error names the file (or 'flags') and the key."""
    data = read_file(path) if path else {}
    data = merge(merge(data, env_overrides(dict(os.environ) if environ is None else environ)), flags or {})
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise ConfigError(f"{path or 'flags/environment'}: key {key!r}: {msg}") from exc
