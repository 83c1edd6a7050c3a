"""One model this device serves, whatever its name: its store, updater, serving engine, swap, health and
report. The agent holds one `ModelHost` per configured model; the default model is just the first entry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fleet.messages import TERMINAL, NamedModel, Phase, ShadowSummary
from runtimes.bundle import Bundle
from runtimes.errors import RuntimesError
from runtimes.manifest import Manifest

from .config import FollowConfig, ModelSpec
from .errors import AgentError
from .inference.engine import Engine, Failover
from .inference.follow import Drift, Follower, keeps
from .inference.serving import Serving, first_that_serves
from .inference.shadow import Shadow
from .reporting.messaging import Messenger
from .update.soak import Perf, perf
from .update.store import Store
from .update.updater import Updater
from .video.pipeline import Pipeline


class Starter(Protocol):
    """Brings a verified bundle to a warm engine (`serving.ServingSettings` on a device, a fake in tests)."""

    def start(self, bundle: Bundle, on_failover: Callable[[Failover], None], source: Path | None = None,
              force: bool = False, under_load: bool = False, quick: bool = False) -> Serving: ...


class Board(Protocol):
    """What a host tells the device's status about itself (`board.StatusBoard`)."""

    def served(self, host: ModelHost) -> None: ...
    def phased(self, host: ModelHost) -> None: ...
    def transferred(self, host: ModelHost, version: int, percent: float) -> None: ...


@dataclass(frozen=True)
class ShadowSettings:
    """The previous model beside the new one during a soak: at most `budget` of one core, samples kept here."""

    budget: float = 0.25
    samples_dir: Path | None = None


class ModelHost:
    """What `updater.Host` asks of a model, and what the cameras, commands and metrics read of it."""

    def __init__(self, spec: ModelSpec, store: Store, starter: Starter, opener: Callable[[Path], Bundle],
                 messenger: Messenger, board: Board, shadow: ShadowSettings | None = None,
                 follow: FollowConfig | None = None, fast_start: bool = True) -> None:
        self.spec, self.store = spec, store
        self._starter, self._opener, self._messenger, self._board = starter, opener, messenger, board
        self.serving: Serving | None = None
        self.phase: Phase | None = None  # the last update phase reported
        self.fallback: str | None = None  # why what serves is not the committed model
        self.pipelines: list[Pipeline] = []
        self.updater: Updater | None = None
        self.shadow: Shadow | None = None  # during a soak: the previous model, compared on live frames
        self.last_shadow: ShadowSummary | None = None
        self._shadow_settings = shadow or ShadowSettings()
        self._previous: Serving | None = None  # during a soak: what served before, kept warm for a rollback
        self._follow = follow or FollowConfig(enabled=False)
        self.follower = Follower(self._follow, time.monotonic())
        self._fast_start = fast_start
        self._remeasuring = threading.Event()
        self._closing = threading.Event()
        self._selection_done = threading.Event()  # clear while a fast start's selection runs
        self._selection_done.set()
        self._on_selected: Callable[[Serving], None] | None = None
        self._lock = threading.Lock()
        self._since = 0.0  # when the engine that serves began to (monotonic)

    @property
    def name(self) -> str:
        return self.spec.name

    # -- what the updater needs ----------------------------------------------------------------------
    def open(self, root: Path) -> Bundle:
        return self._opener(root)

    def current(self) -> Bundle | None:
        return self.serving.bundle if self.serving else None

    def prepare(self, bundle: Bundle, force_select: bool = False) -> Serving:
        """Golden-check, select and load a bundle's best candidate; whatever serves now keeps serving. A fast
        start's selection still running is waited for: two selections at once would each measure the other."""
        self._selection_done.wait()
        return self._prepare(bundle, force_select)

    def _prepare(self, bundle: Bundle, force_select: bool = False, under_load: bool = False,
                 quick: bool = False) -> Serving:
        return self._starter.start(bundle, self._on_failover, self.spec.source, force_select, under_load, quick)

    def swap(self, new: Serving, expect: Serving | None = None) -> bool:
        """Pipelines pick up the new engine on their next frame; the old one is closed after its last.
        `expect`: only while that one still serves, so a choice made in the background never undoes an
        update or a rollback that came first (False: nothing changed)."""
        with self._lock:
            if expect is not None and self.serving is not expect:
                return False
            old, self.serving = self.serving, new
        if old is not None:
            old.engine.close()
        self._changed(new)
        return True

    def _changed(self, new: Serving) -> None:
        self._since = time.monotonic()
        self.follower.restart(self._since)
        self._messenger.selection(new, self.spec.tag)
        self._board.served(self)

    def when_selected(self, hook: Callable[[Serving], None]) -> None:
        """Call `hook` once, with the first serving that this device's full selection chose."""
        self._on_selected = hook

    def _selected(self, serving: Serving) -> None:
        hook, self._on_selected = self._on_selected, None
        if hook is not None:
            hook(serving)

    def trial(self, new: Serving) -> None:
        """Serve `new`; what served before stays warm, as the shadow and for a rollback, until `end_trial`."""
        settings = self._shadow_settings
        with self._lock:
            old, self.serving, self._previous = self.serving, new, self.serving
            samples = settings.samples_dir / new.bundle.root.name if settings.samples_dir else None
            self.shadow = Shadow(old.engine, settings.budget, samples) if old is not None else None
        self._changed(new)

    def verdict(self) -> ShadowSummary | None:
        """Stop the shadow: how the new model compared with the previous one (None: nothing served before)."""
        shadow, self.shadow = self.shadow, None
        self.last_shadow = shadow.stop() if shadow is not None else None
        return self.last_shadow

    def end_trial(self, keep: bool) -> None:
        """Keep the new model and close the previous one, or serve the previous one again at once."""
        previous, self._previous = self._previous, None
        if previous is None:
            return
        if keep:
            previous.engine.close()
        else:
            self._take_over(previous)

    # -- following the device ------------------------------------------------------------------------
    def watch(self, p95_ms: float | None, now: float) -> None:
        """Each telemetry interval, this model's p95 over it: a sustained drift from its baseline re-measures
        the candidates in the background (never during an update, whose soak has its own judge)."""
        current = self.serving
        if current is None or current.selection.provisional or self.updating or self.shadow is not None \
                or self._remeasuring.is_set():
            return  # its full selection, an update's soak or a re-measure is under way: they judge it now
        drift = self.follower.observe(p95_ms, now)
        if drift is not None:
            self._remeasuring.set()
            threading.Thread(target=self._remeasure, args=(current, drift), name=f"follow-{self.name}",
                             daemon=True).start()

    def _remeasure(self, current: Serving, drift: Drift) -> None:
        try:
            self._measure_again(current, drift)
        finally:
            self._remeasuring.clear()

    def _measure_again(self, current: Serving, drift: Drift) -> None:
        self._messenger.event("reselect", self._label(f"{drift.describe()}: measuring the candidates again "
                                                      "under this load"), stage="measuring", **drift.data(),
                              **self._extra())
        try:
            fresh = self._prepare(current.bundle, force_select=True, under_load=True)
        except (AgentError, RuntimesError) as exc:  # what serves keeps serving
            self.error(f"re-measuring under load failed: {exc}")
            self.follower.restart(time.monotonic(), cooldown=True)
            return
        self._settle(current, fresh, drift)
        self.follower.restart(time.monotonic(), cooldown=True)

    def _settle(self, current: Serving, fresh: Serving, drift: Drift) -> None:
        """The re-measure nominates, the live frames decide: a benchmark run beside the serving pipeline and the
        load under-reads what the pipeline sees, so a nominee serves for `trial_s` and stays only when its p95
        on the camera's frames beats the serving one's by `min_gain`."""
        mine = current.active_candidate() or current.selection.selected
        nominee = fresh.selection.selected
        if nominee.key == mine.key:
            fresh.engine.close()
            self._reselected(False, mine.key, nominee.key, nominee.median_ms, nominee.median_ms,
                             "measured under the load", drift)
            return
        said = (f"trying {nominee.key} (re-measured {_ms(nominee.median_ms)}) against {mine.key} on live frames, "
                f"{self._follow.trial_s:.0f} s each")
        self._messenger.event("reselect", self._label(said), stage="trying", **self._extra())
        before = self._live()  # now, not during the re-measure, whose own load would favour any change
        if not self._exchange(fresh, expect=current):  # an update came first: leave it be
            fresh.engine.close()
            return
        after = self._live()
        before_ms, after_ms = (before.p95_ms if before else None), (after.p95_ms if after else None)
        keep = keeps(before_ms, after_ms, self._follow.min_gain)
        self._conclude(keep, current, fresh)
        self._reselected(keep, mine.key, nominee.key, before_ms, after_ms, "p95 on live frames", drift)

    def _live(self) -> Perf | None:
        """The serving engine's p95 on the camera's frames over the next `trial_s` (its first seconds skipped:
        a fresh session's first runs are slow)."""
        window = self._follow.trial_s
        started = time.monotonic()
        self._closing.wait(window)
        return self.performance(started + min(2.0, window / 4), time.monotonic())

    def _exchange(self, new: Serving, expect: Serving) -> bool:
        """Serve `new` in place of `expect` without closing it (a live trial can go back at once)."""
        with self._lock:
            if self.serving is not expect:
                return False
            self.serving = new
        self._changed(new)
        return True

    def _conclude(self, keep: bool, current: Serving, fresh: Serving) -> None:
        if keep:
            current.engine.close()
        elif self._exchange(current, expect=fresh):
            fresh.engine.close()
        else:  # an update replaced the nominee meanwhile: the one it replaced is nobody's now
            current.engine.close()

    def _reselected(self, switch: bool, mine: str, theirs: str, mine_ms: float | None, theirs_ms: float | None,
                    how: str, drift: Drift) -> None:
        said = (f"switched from {mine} ({_ms(mine_ms)}) to {theirs} ({_ms(theirs_ms)})" if switch else
                f"kept {mine} ({_ms(mine_ms)}; {theirs}: {_ms(theirs_ms)})")
        self._messenger.event("reselect", self._label(f"{said}, {how}, after the {drift.describe()}"),
                              stage="switched" if switch else "kept", switched=switch, previous=mine,
                              fastest=theirs, previous_ms=mine_ms, fastest_ms=theirs_ms, **drift.data(),
                              **self._extra())

    def health(self) -> tuple[int, int, int]:
        """Frames processed (-1 without cameras), inference errors, failovers of its engine."""
        frames = sum(p.stats.processed for p in self.pipelines) if self.pipelines else -1
        failovers = len(self.serving.engine.failovers) if self.serving else 0
        return frames, sum(p.stats.errors for p in self.pipelines), failovers

    def performance(self, since: float, until: float) -> Perf | None:
        """The serving engine's p95 and fps over every camera between two monotonic times, from when it began
        to serve (a fast start's safe candidate, measured while its selection ran beside it, is not the model's
        figure). None: too few frames."""
        return perf([s for p in self.pipelines for s in p.stats.recent], max(since, self._since), until)

    def report(self, phase: Phase, digest: str, message: str, kind: str = "update", **data: Any) -> None:
        self._messenger.event(kind, self._label(message), phase=phase, digest=digest, **self._extra(), **data)
        if phase == Phase.COMMITTED:
            self.fallback = None
        self.phase = phase
        self._board.phased(self)

    def transfer(self, version: int, percent: float) -> None:
        self._board.transferred(self, version, percent)

    # -- serving ---------------------------------------------------------------------------------------
    def serve(self, root: Path, quick: bool = False) -> Serving:
        """`quick`: nothing serves yet, so a bundle never measured here starts on a safe candidate while the
        full selection runs in the background; its choice takes over between two frames."""
        new = self._prepare(self.open(root), quick=quick and self._fast_start)
        self._take_over(new)
        return new

    def _take_over(self, serving: Serving) -> None:
        """Serve it; a provisional one (a fast start, or a rollback to one) has its selection run behind it."""
        self.swap(serving)
        if serving.selection.provisional:
            self._selection_done.clear()
            threading.Thread(target=self._complete, args=(serving,), name=f"select-{self.name}",
                             daemon=True).start()
        else:
            self._selected(serving)

    def _complete(self, provisional: Serving) -> None:
        try:
            fresh = self._prepare(provisional.bundle)
        except (AgentError, RuntimesError) as exc:  # the safe candidate serves on
            self.error(f"selection failed; {provisional.selection.selected.key} serves on: {exc}")
            return
        finally:
            self._selection_done.set()
        if self.swap(fresh, expect=provisional):
            self._selected(fresh)
        else:
            fresh.engine.close()

    def load(self) -> Serving | None:
        """The store's committed bundle, else its previous one, else the seed. Serving anything but the
        committed bundle sets `fallback`, with the reason, until an update commits."""
        roots = self.store.start_roots(self.spec.seed)
        committed = self.store.current()
        failures: list[str] = []

        def failed(message: str) -> None:
            failures.append(message)
            self.error(message)

        served = first_that_serves(roots, lambda root: self.serve(root, quick=True), failed)
        if served is None:
            self.fallback = "; ".join(failures) or "no model"
            if not roots:
                self.error("no model: give --bundle or push one with `edgectl push`" if self.spec.primary
                           else "nothing to serve: its seed bundle is not set")
        elif committed is not None and served.bundle.root != committed:
            self.fallback = f"the committed model does not serve ({failures[0] if failures else 'unknown'}); " \
                            f"serving {served.bundle.manifest.name} v{served.bundle.manifest.version} instead"
        return served

    def engine(self) -> Engine | None:
        return self.serving.engine if self.serving else None

    def manifest(self) -> Manifest | None:
        return self.serving.bundle.manifest if self.serving else None

    @property
    def updating(self) -> bool:
        return self.phase is not None and self.phase not in TERMINAL

    def ref(self) -> NamedModel | None:
        if self.serving is None:
            return None
        model, runtime = self.serving.refs()
        return NamedModel(name=self.name, model=model, runtime=runtime,
                          update_phase=self.phase if self.updating else None)

    def error(self, message: str) -> None:
        self._messenger.event("error", self._label(message), **self._extra())

    def close(self) -> None:
        self._closing.set()
        if self.updater is not None:
            self.updater.stop()
        if self.serving is not None:
            self.serving.engine.close()

    def _on_failover(self, event: Failover) -> None:
        self._messenger.failover(event, self.spec.tag)
        self._board.served(self)

    def _label(self, message: str) -> str:
        return f"model {self.spec.tag}: {message}" if self.spec.tag else message

    def _extra(self) -> dict[str, str]:
        return {"model": self.spec.tag} if self.spec.tag else {}


def _ms(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1f} ms"
