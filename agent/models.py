"""Models besides the default one: named in the config (`[models] faces = "/opt/bundles/faces"`), each with its
own golden check, selection, engine and runner-up, bound to cameras by name. `edgectl push` updates the
default model; a named model serves the bundle configured for it until the config changes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fleet.messages import NamedModel
from runtimes.errors import RuntimesError

from . import serving
from .engine import Engine, Failover
from .errors import AgentError

if TYPE_CHECKING:
    from .daemon import Agent

log = logging.getLogger(__name__)


class NamedModels:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.servings: dict[str, serving.Serving] = {}

    def load(self) -> None:
        """Serve every configured model that verifies and selects; each failure is an event, not a stop."""
        a = self.agent
        for name, root in a.cfg.models.items():
            try:
                self.servings[name] = serving.start(
                    a.open(root), a.hw, a.cfg.state_dir, a.cfg.selection_budget_s, a.cfg.thresholds.stuck_timeout_s,
                    functools.partial(self._on_failover, name), a.cfg.file_source(name))
            except (RuntimesError, AgentError, OSError) as exc:
                a.messenger.event("error", f"model {name}: cannot serve {root}: {exc}", model=name)
                continue
            s = self.servings[name]
            a.messenger.event("selection", f"model {name}: serving {s.bundle.manifest.name} on "
                              f"{s.selection.selected.key}", model=name, selected=s.selection.selected.as_dict(),
                              cached=s.selection.cached)
        self.publish()

    def engine(self, name: str) -> Callable[[], Engine | None]:
        def current() -> Engine | None:
            s = self.servings.get(name)
            return s.engine if s else None

        return current

    def manifest_name(self, name: str) -> str | None:
        s = self.servings.get(name)
        return s.bundle.manifest.name if s else None

    def refs(self) -> list[NamedModel]:
        out = []
        for name in sorted(self.servings):
            model, rt = self.servings[name].refs()
            out.append(NamedModel(name=name, model=model, runtime=rt))
        return out

    def publish(self) -> None:
        if self.servings:
            self.agent.messenger.set_status(other_models=self.refs())

    def _on_failover(self, name: str, event: Failover) -> None:
        self.agent.messenger.failover(event, name)
        self.publish()

    def close(self) -> None:
        for s in self.servings.values():
            s.engine.close()
