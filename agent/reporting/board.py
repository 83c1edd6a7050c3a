"""Status's model fields, composed from every model host: the primary model's at the top level (model,
runtime, update_phase, and the state they imply), every other model in `other_models`."""

from __future__ import annotations

from collections.abc import Callable

from fleet.messages import TERMINAL, NamedModel

from ..host import ModelHost
from .messaging import Messenger


class StatusBoard:
    def __init__(self, messenger: Messenger, hosts: Callable[[], list[ModelHost]]) -> None:
        self._messenger, self._hosts = messenger, hosts

    def served(self, host: ModelHost) -> None:
        if host.spec.primary and host.serving is not None:
            self._messenger.set_model(*host.serving.refs())
        elif not host.spec.primary:
            self.publish_others()

    def phased(self, host: ModelHost) -> None:
        if not host.spec.primary:
            self.publish_others()
        elif host.phase in TERMINAL:
            self._messenger.set_status(state=self.settled(host), update_phase=host.phase, reason=host.fallback,
                                       update_to=None, update_progress=None, shadow=host.last_shadow)
        else:
            self._messenger.set_status(state="updating", update_phase=host.phase)

    def transferred(self, host: ModelHost, version: int, percent: float) -> None:
        if host.spec.primary:
            self._messenger.set_status(update_to=version, update_progress=percent)

    def loaded(self, host: ModelHost) -> None:
        """After the first load: the primary model decides whether the device is online or degraded."""
        if host.spec.primary:
            # Only a fallback sets the reason: a damaged state file may have said why already.
            self._messenger.set_status(state=self.settled(host), **({"reason": host.fallback} if host.fallback else {}))
        else:
            self.publish_others()

    def publish_others(self) -> None:
        refs: list[NamedModel] = [r for h in self._hosts() if not h.spec.primary if (r := h.ref()) is not None]
        if refs:
            self._messenger.set_status(other_models=refs)

    @staticmethod
    def settled(host: ModelHost) -> str:
        return "online" if host.serving is not None and host.fallback is None else "degraded"
