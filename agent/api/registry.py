"""The models the API serves, found by the bundle's model name or by the agent's name for the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from fleet.messages import ApiModelStats

from ..errors import ApiError
from .service import ModelService


@dataclass
class Api:
    services: dict[str, ModelService] = field(default_factory=dict)  # by the agent's model name

    def find(self, name: str) -> ModelService:
        if name in self.services:
            return self.services[name]
        for svc in self.services.values():
            current = svc.host.serving
            if current is not None and current.bundle.manifest.name == name:
                return svc
        raise ApiError(404, f"model {name!r} is not served here (served: {', '.join(self.names()) or 'none'})")

    def names(self) -> list[str]:
        """Each model by its bundle's name where it serves, else by the agent's name for it."""
        return [s.host.serving.bundle.manifest.name if s.host.serving else key for key, s in self.services.items()]

    def of_task(self, task: str) -> ModelService:
        """The first model of a task (DeepStack's endpoints name a task, not a model)."""
        for svc in self.services.values():
            current = svc.host.serving
            if current is not None and current.bundle.manifest.task == task:
                return svc
        raise ApiError(404, f"no {task} model is served here (served: {', '.join(self.names()) or 'none'})")

    def ready(self) -> bool:
        return bool(self.services) and all(s.host.serving is not None for s in self.services.values())

    def stats(self) -> dict[str, ApiModelStats]:
        return {name: s.stats.snapshot() for name, s in zip(self.names(), self.services.values(), strict=True)}

    def stop(self) -> None:
        for svc in self.services.values():
            svc.stop()
