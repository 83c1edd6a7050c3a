"""Models besides the default one: named in the config (`[models] faces = "/opt/bundles/faces"`), each with its
own golden check, selection, engine and runner-up, bound to cameras by name. Each has its own updater on
`edge/<id>/desired/<name>` (`edgectl push --model faces`) and its own store pointers: it starts from what it
committed last, else from the seed bundle in the config."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.messages import TERMINAL, BadPayload, Desired, NamedModel, parse
from runtimes.bundle import Bundle
from runtimes.manifest import Manifest

from . import serving
from .engine import Engine, Failover
from .store import Store, StoreError
from .updater import Updater

if TYPE_CHECKING:
    from .daemon import Agent


class NamedModels:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.servings: dict[str, serving.Serving] = {}
        self.phases: dict[str, str] = {}  # a model's update in progress
        self.updaters: list[Updater] = []
        self._lock = threading.Lock()
        self._refused: set[tuple[str, str]] = set()

    def load(self) -> None:
        """Serve every configured model that verifies and selects; each failure is an event, not a stop."""
        a = self.agent
        for name, seed in a.cfg.models.items():
            try:
                store = Store(a.cfg.state_dir / "store", name, on_damage=a.state_damaged)
            except StoreError as exc:
                a.messenger.event("error", f"model {name}: {exc}", model=name)
                continue
            host = NamedHost(self, name)
            roots = store.start_roots(seed)
            served = serving.first_that_serves(roots, host.serve, host.error)
            if served is None:
                host.error(f"nothing to serve (tried {', '.join(map(str, roots))})")
            self.updaters.append(Updater(host, store, a.client, a.topics, a.cfg.device_id, a.cfg.thresholds.soak_s,
                                         a.cfg.thresholds.fetch_stall_s,
                                         model=name))
        self.publish()

    def start(self) -> None:
        for updater in self.updaters:
            updater.start()
        a = self.agent
        a.client.subscribe(a.topics.desired(a.cfg.device_id, "+"), self._on_other_desired)

    def _on_other_desired(self, msg: Any) -> None:
        """A push for a model this device does not have is refused at once, so `edgectl push --model` says
        why instead of waiting out its timeout. Once per digest: the retained message comes back on every
        reconnect."""
        name = str(msg.topic).rsplit("/", 1)[1]
        if name in self.agent.cfg.models or not msg.payload:
            return
        try:
            desired: Desired = parse(Desired, msg.payload, msg.topic)
        except BadPayload as exc:
            self.agent.messenger.event("rejected", f"rejected desired state: {exc}", phase="refused", model=name)
            return
        if (name, desired.digest) in self._refused:
            return
        self._refused.add((name, desired.digest))
        known = ", ".join(["default", *sorted(self.agent.cfg.models)])
        self.agent.messenger.event("rejected", f"model {name!r} is not configured on this device (it has: {known})",
                                   phase="refused", digest=desired.digest, model=name)

    def engine(self, name: str) -> Callable[[], Engine | None]:
        def current() -> Engine | None:
            s = self.servings.get(name)
            return s.engine if s else None

        return current

    def manifest(self, name: str) -> Manifest | None:
        s = self.servings.get(name)
        return s.bundle.manifest if s else None

    def refs(self) -> list[NamedModel]:
        out = []
        for name in sorted(self.servings):
            model, rt = self.servings[name].refs()
            out.append(NamedModel(name=name, model=model, runtime=rt, update_phase=self.phases.get(name)))
        return out

    def publish(self) -> None:
        if self.servings:
            self.agent.messenger.set_status(other_models=self.refs())

    def swap(self, name: str, new: serving.Serving) -> serving.Serving:
        with self._lock:
            old, self.servings[name] = self.servings.get(name), new
        if old is not None:
            old.engine.close()
        self.agent.messenger.selection(new, name)
        self.publish()
        return new

    def on_failover(self, name: str, event: Failover) -> None:
        self.agent.messenger.failover(event, name)
        self.publish()

    def close(self) -> None:
        for updater in self.updaters:
            updater.stop()
        for s in self.servings.values():
            s.engine.close()


class NamedHost:
    """What a named model's updater needs (the agent is the default model's host)."""

    def __init__(self, models: NamedModels, name: str) -> None:
        self.models, self.name, self.agent = models, name, models.agent

    def open(self, root: Path) -> Bundle:
        return self.agent.open(root)

    def current(self) -> Bundle | None:
        s = self.models.servings.get(self.name)
        return s.bundle if s else None

    def prepare(self, bundle: Bundle) -> serving.Serving:
        a = self.agent
        return serving.start(bundle, a.hw, a.cfg.state_dir, a.cfg.selection_budget_s,
                             a.cfg.thresholds.stuck_timeout_s, functools.partial(self.models.on_failover, self.name),
                             a.cfg.file_source(self.name), runner_up=a.cfg.runner_up)

    def swap(self, prepared: serving.Serving) -> None:
        self.models.swap(self.name, prepared)

    def serve(self, root: Path) -> serving.Serving:
        return self.models.swap(self.name, self.prepare(self.open(root)))

    def health(self) -> tuple[int, int, int]:
        return self.agent.health(self.name)

    def report(self, phase: str, digest: str, message: str, kind: str = "update", **data: Any) -> None:
        self.agent.messenger.event(kind, f"model {self.name}: {message}", phase=phase, digest=digest,
                                   model=self.name, **data)
        if phase in TERMINAL:
            self.models.phases.pop(self.name, None)
        else:
            self.models.phases[self.name] = phase
        self.models.publish()

    def error(self, message: str) -> None:
        self.agent.messenger.event("error", f"model {self.name}: {message}", model=self.name)

