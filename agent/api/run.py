"""The API's lifecycle in the agent: one service per hosted model, the HTTP and gRPC listeners the config asks
for, and the cameras' latest answers. A listener that cannot start is an error event; the cameras and the
models serve on regardless."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from runtimes.tasks import Answer

from ..errors import AgentError
from .cameras import Latest
from .registry import Api
from .service import ModelService, Served
from .settings import ApiConfig

log = logging.getLogger(__name__)


class ApiServers:
    def __init__(self, cfg: ApiConfig, hosts: list[Served], metrics: Callable[[], bytes]) -> None:
        self.cfg = cfg
        self.api = Api({h.name: ModelService(h, cfg) for h in hosts})
        self.latest = Latest()
        self._metrics = metrics
        self._servers: list[Any] = []

    def start(self) -> list[str]:
        """Start each configured listener; the problems of those that could not start, one line each."""
        try:
            token = self.cfg.token()
        except OSError as exc:
            return [f"api token_file {self.cfg.token_file}: cannot read ({exc.strerror}); the API is off"]
        problems = []
        for start in (self._http, self._grpc):
            try:
                server = start(token)
            except (AgentError, OSError, ImportError) as exc:
                problems.append(str(exc) if not isinstance(exc, ImportError) else
                                f"api: {exc.name or exc} is not installed (pip install 'edgectl[api]')")
                continue
            if server is not None:
                self._servers.append(server)
                log.info("api listening on %s", server.address)
        return problems

    def _http(self, token: str | None) -> Any:
        if not self.cfg.listen:
            return None
        from .server import HttpServer, make_app

        return HttpServer(make_app(self.api, self.cfg, token, self.latest, self._metrics), self.cfg).start()

    def _grpc(self, token: str | None) -> Any:
        if not self.cfg.grpc_listen:
            return None
        from .grpc_server import GrpcServer, Servicer

        return GrpcServer(Servicer(self.api, self.cfg, token), self.cfg).start()

    def answered(self, camera: str, model: str, answer: Answer, latency_ms: float, frame: Any) -> None:
        self.latest.offer(camera, model, answer, latency_ms, frame)

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
        self.api.stop()
