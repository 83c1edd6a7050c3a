"""A model update, as docs/agent.md describes: desired → fetch missing chunks → verify → stage → check and select
on the device → switch while the old model serves → soak → commit, or roll back. Every phase is an event,
shows in status and is written to the store first, so a restart resumes or rolls back."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from fleet.messages import (
    INTERRUPTIBLE,
    REFUSING,
    RESUMABLE,
    BadPayload,
    BundleManifest,
    Desired,
    Phase,
    ShadowSummary,
    parse,
)
from fleet.mqtt import MqttClient
from fleet.topics import DEFAULT_MODEL, Topics
from fleet.transfer import TransferError, check_chunk, check_desired, check_manifest
from fleet.web import HttpSource
from runtimes.bundle import Bundle
from runtimes.errors import RuntimesError

from ..errors import AgentError
from . import soak
from .http_fetch import HttpFetch, HttpFetchFailed
from .store import Attempt, Store, UpdateRecord

log = logging.getLogger(__name__)
NONE_ARRIVED = ("; none reached this device's broker node: push through the node it uses, or over HTTP "
                "(`edgectl push --http`)")
RESUBSCRIBE_S = 5.0
# Chunks come through one wildcard subscription (one JetStream consumer on NATS); a broker that delivers no
# retained message to a wildcard (RabbitMQ) gets an exact subscription per missing chunk after this long.
WILDCARD_WAIT_S = 2.0
STEP_PCT = 5.0  # status shows the transfer's progress in steps of this many points
BEFORE_S = 60.0  # the previous model's p95 and fps: over this long before the update began
WARM_S = 2.0  # the new model's: over the soak, less its first seconds (caches, lazy compilation)


class UpdateFailed(AgentError):
    def __init__(self, phase: Phase, reason: str, keep_chunks: bool = False) -> None:
        super().__init__(reason)
        self.phase, self.reason, self.keep_chunks = phase, reason, keep_chunks


class Host(Protocol):
    """What the updater needs from the agent."""

    def open(self, root: Any) -> Bundle: ...
    def current(self) -> Bundle | None: ...
    def prepare(self, bundle: Bundle) -> Any: ...
    def trial(self, prepared: Any) -> None: ...  # serve it; the previous model stays as the shadow
    def verdict(self) -> ShadowSummary | None: ...  # stop the shadow: how the two compared
    def end_trial(self, keep: bool) -> None: ...  # keep the new model, or go back to the previous one
    def health(self) -> tuple[int, int, int]: ...  # frames processed, errors, failovers
    def performance(self, since: float, until: float) -> soak.Perf | None: ...  # p95 and fps in a window
    def report(self, phase: Phase, digest: str, message: str, **data: Any) -> None: ...
    def transfer(self, version: int, percent: float) -> None: ...  # how much of the new bundle is here


class Updater:
    def __init__(self, host: Host, store: Store, client: MqttClient, topics: Topics, device: str,
                 soak_s: float, fetch_stall_s: float = 60.0, model: str = DEFAULT_MODEL,
                 http_ca_file: str | None = None) -> None:
        self.host, self.store, self.client, self.topics, self.device = host, store, client, topics, device
        self.model = model
        self.soak_s, self.fetch_stall_s, self.http_ca_file = soak_s, fetch_stall_s, http_ca_file
        self._jobs: queue.Queue[Desired] = queue.Queue()
        self._stop = threading.Event()
        self._fetch = _Fetch()
        self._shown = -STEP_PCT
        self._thread = threading.Thread(target=self._work, name=f"updater-{model}", daemon=True)

    def start(self) -> None:
        self._recover()
        self.client.subscribe(self.topics.desired(self.device, self.model), self._on_desired)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._fetch.wake.set()

    # -- intake ------------------------------------------------------------------------------------------
    def _on_desired(self, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return  # a cleared retained desired: nothing to do
        try:
            desired = parse(Desired, msg.payload, msg.topic)
        except BadPayload as exc:
            self.host.report(Phase.REFUSED, "", f"rejected desired state: {exc}", kind="rejected")
            return
        self._jobs.put(desired)

    def _recover(self) -> None:
        """After a restart: resume a transfer, or roll back an update that had not committed."""
        state = self.store.state()
        if state.phase in INTERRUPTIBLE:
            self._finish(state.desired, state.digest, Phase.ROLLED_BACK,
                         f"agent restarted during {state.phase}; still on the committed model")
        elif state.phase in RESUMABLE and state.desired is not None:
            self._jobs.put(state.desired)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                desired = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            while not self._jobs.empty():  # only the newest desired state matters
                desired = self._jobs.get_nowait()
            try:
                self._handle(desired)
            except (OSError, AgentError) as exc:  # the store failed us: say so, keep serving, keep listening
                log.error("update of %s stopped: %s", desired.digest[:12], exc)
                self.host.report(Phase.REFUSED, desired.digest, f"update stopped: {exc}", kind="error")

    # -- the state machine -------------------------------------------------------------------------------
    def _handle(self, desired: Desired) -> None:
        if self._answered(desired):
            return
        try:
            self._update(desired)
        except UpdateFailed as exc:
            terminal = Phase.REFUSED if exc.phase in REFUSING else Phase.ROLLED_BACK
            self._finish(desired, desired.digest, terminal, f"{exc.phase}: {exc.reason}", exc.keep_chunks)

    def _answered(self, desired: Desired) -> bool:
        """Idempotent on the retained desired state: nothing to do when this bundle serves, or when this very
        push (same issued_at) was refused or rolled back. A new push of the same bundle is a new attempt, and
        a committed bundle that no longer serves (damaged on disk, pointer lost) is fetched again."""
        serving = self.host.current()
        attempt = self.store.state().answered(desired)
        if serving is not None and Path(serving.root) == self.store.bundle_dir(desired.digest):
            if attempt is None:  # a new push of what serves: answer it, or its pusher waits out its timeout
                self._finish(desired, desired.digest, Phase.COMMITTED, f"committed {serving.manifest.name} "
                             f"v{serving.manifest.version} (already serving it)")
            return True
        if attempt is not None and attempt.phase != Phase.COMMITTED:
            return True
        if self.store.bundle_dir(desired.digest).is_dir():
            # On disk but not serving: it failed to serve at start. Fetch and verify it afresh.
            self.store.discard_bundle(desired.digest, damaged=True)
        return False

    def _update(self, desired: Desired) -> None:
        # The minute before the update is the previous model's, for the performance gates: taken now, as the
        # frames' record is bounded and a long fetch and selection would push that minute out of it.
        started = time.monotonic()
        before = self.host.performance(started - BEFORE_S, started)
        self._check_admission(desired)
        self._phase(desired, Phase.FETCHING, f"fetching {desired.chunks} chunks")
        manifest = self._fetch_all(desired)
        self._phase(desired, Phase.VERIFYING, "checking the archive, the manifest and the signature")
        bundle = self._verify(desired, manifest)
        self._phase(desired, Phase.CHECKING, "golden check and runtime selection on this device")
        prepared = self._prepare(bundle)
        self._phase(desired, Phase.SWITCHING, "switching to the new model")
        self.host.trial(prepared)
        switched = time.monotonic()
        self._phase(desired, Phase.SOAKING, f"watching the new model for {self.soak_s:.0f} s")
        failure = soak.watch(self.host, self.soak_s, self._stop)
        shadow = self.host.verdict()
        during = self.host.performance(switched + min(WARM_S, self.soak_s / 4), time.monotonic())
        failure = failure or soak.gate(desired.min_agreement, shadow) or \
            soak.gate_performance(desired.max_p95_ratio, desired.min_fps_ratio, before, during)
        self.host.end_trial(keep=failure is None)
        figures = soak.figures(shadow) | soak.perf_figures(before, during)
        if failure:
            self._finish(desired, desired.digest, Phase.ROLLED_BACK, failure, **figures)
            return
        self.store.commit(desired.digest)
        m = bundle.manifest
        self._finish(desired, desired.digest, Phase.COMMITTED, f"committed {m.name} v{m.version}", **figures)
        self.store.prune()

    def _phase(self, desired: Desired, phase: Phase, message: str) -> None:
        state = self.store.state()
        self.store.set_state(UpdateRecord(digest=desired.digest, phase=phase, desired=desired, done=state.done))
        self.host.report(phase, desired.digest, message)

    def _finish(self, desired: Desired | None, digest: str, phase: Phase, message: str,
                keep_chunks: bool = False, **data: Any) -> None:
        done = self.store.state().done[-20:]
        if desired is not None:
            done.append(Attempt(digest=desired.digest, issued_at=desired.issued_at, phase=phase))
        if phase != Phase.COMMITTED and digest:
            # Space first: on a full disk the state below could not be written otherwise. Chunks of a stalled
            # fetch were each verified: they stay for the next attempt.
            if not keep_chunks:
                self.store.discard_incoming(digest)
            if digest != self.store.pointer().current:
                self.store.discard_bundle(digest)
        self.store.set_state(UpdateRecord(digest=digest, phase=phase, done=done, reason=message))
        self.host.report(phase, digest, message, **data)

    def _check_admission(self, desired: Desired) -> None:
        current = self.host.current()
        if current is not None and desired.version < current.manifest.version and not desired.force:
            raise UpdateFailed(Phase.RECEIVED, f"version {desired.version} is older than the running "
                               f"{current.manifest.version} (push with --force to downgrade)")
        need = desired.size * 2 + (1 << 20)  # the archive and its unpacked copy
        if self.store.free_bytes() < need:
            raise UpdateFailed(Phase.RECEIVED, f"bundle needs {need >> 20} MiB, only "
                               f"{self.store.free_bytes() >> 20} MiB free in {self.store.root}")

    def _verify(self, desired: Desired, manifest: BundleManifest) -> Bundle:
        try:
            archive = self.store.assemble(manifest)
            root = self.store.install(manifest, archive, max_bytes=desired.size * 2)
            self.store.discard_incoming(desired.digest)
            bundle = self.host.open(root)
        except (AgentError, TransferError, RuntimesError, OSError) as exc:
            raise UpdateFailed(Phase.VERIFYING, str(exc)) from exc
        current = self.host.current()
        if current is not None and bundle.manifest.version < current.manifest.version and not desired.force:
            raise UpdateFailed(Phase.VERIFYING, f"bundle version {bundle.manifest.version} is older than the "
                               f"running {current.manifest.version}")
        return bundle

    def _prepare(self, bundle: Bundle) -> Any:
        try:
            return self.host.prepare(bundle)
        except (AgentError, RuntimesError, OSError) as exc:
            raise UpdateFailed(Phase.CHECKING, str(exc)) from exc

    # -- fetching -------------------------------------------------------------------------------------------
    def _fetch_all(self, desired: Desired) -> BundleManifest:
        if desired.url:
            return self._fetch_http(desired, desired.url)
        fetch = self._fetch = _Fetch(desired, self.store)
        self._shown = -STEP_PCT
        manifest_topic = self.topics.bundle_manifest(desired.digest)
        self.client.subscribe(manifest_topic, lambda m: self._on_manifest(fetch, m))
        try:
            while not fetch.done.is_set():
                fetch.wake.clear()
                if self._stop.is_set():
                    raise UpdateFailed(Phase.FETCHING, "agent stopping")
                if fetch.error:
                    raise UpdateFailed(Phase.FETCHING, fetch.error)
                idle = time.monotonic() - fetch.progress_at
                if idle > self.fetch_stall_s:
                    hint = "" if fetch.have else NONE_ARRIVED
                    raise UpdateFailed(Phase.FETCHING, f"no chunk for {self.fetch_stall_s:.0f} s "
                                   f"({len(fetch.have)}/{desired.chunks} received; kept for a retry){hint}",
                                   keep_chunks=True)
                if fetch.wildcard and idle > WILDCARD_WAIT_S:
                    self._per_chunk(fetch)
                elif idle > RESUBSCRIBE_S * (fetch.resubscribed + 1):
                    self._resubscribe(fetch)
                self._transferred(desired, len(fetch.have))
                fetch.wake.wait(0.5)
        finally:
            self.client.unsubscribe(manifest_topic)
            for topic in [*fetch.subscribed, *([fetch.wildcard] if fetch.wildcard else [])]:
                self.client.unsubscribe(topic)
        if fetch.manifest is None:
            raise UpdateFailed(Phase.FETCHING, "no transfer manifest")
        return fetch.manifest

    def _transferred(self, desired: Desired, have: int) -> None:
        """The transfer's share for status (Home Assistant's update percentage), in steps, not per chunk."""
        pct = round(100.0 * have / desired.chunks, 1)
        if pct >= self._shown + STEP_PCT or (pct == 100 and self._shown < 100):
            self._shown = pct
            self.host.transfer(desired.version, pct)

    def _fetch_http(self, desired: Desired, url: str) -> BundleManifest:
        def progress(manifest: BundleManifest, have: int, missing: int) -> None:
            self.host.report(Phase.FETCHING, manifest.digest, f"{have} chunks already here, fetching {missing} "
                             f"from {url}", have=have, missing=missing)

        source = HttpSource(url, self.http_ca_file)
        try:
            self._shown = -STEP_PCT
            return HttpFetch(desired, self.store, source, self._stop, self.fetch_stall_s, progress,
                             lambda have: self._transferred(desired, have)).run()
        except HttpFetchFailed as exc:
            raise UpdateFailed(Phase.FETCHING, exc.reason, keep_chunks=exc.keep_chunks) from exc

    def _resubscribe(self, fetch: _Fetch) -> None:
        """Ask again for the chunks still missing: some brokers (NATS 2.9 seen here) drop retained
        deliveries when many subscriptions arrive at once."""
        fetch.resubscribed += 1
        for topic in list(fetch.subscribed):
            self.client.unsubscribe(topic)
        for topic in list(fetch.subscribed):
            index = int(topic.rsplit("/", 1)[1])
            self.client.subscribe(topic, functools.partial(self._on_chunk, fetch, index))
        log.info("re-subscribed to %d missing chunks", len(fetch.subscribed))

    def _on_manifest(self, fetch: _Fetch, msg: mqtt.MQTTMessage) -> None:
        if fetch.manifest is not None or not msg.payload:
            return
        try:
            manifest = parse(BundleManifest, msg.payload, msg.topic)
            check_manifest(manifest)
            fetch.accept_manifest(manifest)
        except (BadPayload, TransferError) as exc:
            fetch.fail(str(exc))
            return
        try:
            self.store.save_transfer_manifest(manifest)
        except OSError as exc:
            fetch.fail(f"cannot store the transfer manifest in {self.store.root}: {exc.strerror}")
            return
        missing = sorted(set(range(len(manifest.chunk_sha256))) - fetch.have)
        self.host.report(Phase.FETCHING, manifest.digest, f"{len(fetch.have)} chunks already here, fetching "
                         f"{len(missing)}", have=len(fetch.have), missing=len(missing))
        if missing:
            fetch.wildcard = self.topics.bundle_chunks(manifest.digest)
            self.client.subscribe(fetch.wildcard, functools.partial(self._on_any_chunk, fetch))
        fetch.check_done()

    def _per_chunk(self, fetch: _Fetch) -> None:
        """Exact subscriptions to exactly what we lack, for brokers whose wildcards get no retained message."""
        if fetch.wildcard:
            self.client.unsubscribe(fetch.wildcard)
            fetch.wildcard = None
        if fetch.manifest is None:
            return
        for index in sorted(set(range(len(fetch.manifest.chunk_sha256))) - fetch.have):
            topic = self.topics.bundle_chunk(fetch.manifest.digest, index)
            fetch.subscribed.add(topic)
            self.client.subscribe(topic, functools.partial(self._on_chunk, fetch, index))
        log.info("no chunk through the wildcard: %d exact subscriptions", len(fetch.subscribed))

    def _on_any_chunk(self, fetch: _Fetch, msg: mqtt.MQTTMessage) -> None:
        index = str(msg.topic).rsplit("/", 1)[1]
        if index.isdigit():
            self._on_chunk(fetch, int(index), msg)

    def _on_chunk(self, fetch: _Fetch, index: int, msg: mqtt.MQTTMessage) -> None:
        if fetch.manifest is None or index in fetch.have or not msg.payload:
            return
        payload = bytes(msg.payload)
        try:
            check_chunk(fetch.manifest, index, payload)
        except TransferError as exc:
            fetch.fail(str(exc))
            return
        try:
            self.store.save_chunk(fetch.manifest.digest, index, payload)
        except OSError as exc:  # a full or read-only store ends this update, not the agent
            fetch.fail(f"cannot store chunk {index} in {self.store.root}: {exc.strerror}")
            return
        fetch.got(index)
        if msg.topic in fetch.subscribed:
            self.client.unsubscribe(msg.topic)
            fetch.subscribed.discard(msg.topic)


class _Fetch:
    """One transfer's progress, shared between paho's thread and the updater's."""

    def __init__(self, desired: Desired | None = None, store: Store | None = None) -> None:
        self.desired = desired
        self.manifest: BundleManifest | None = None
        self.have: set[int] = store.have_chunks(desired.digest) if desired and store else set()
        self.subscribed: set[str] = set()
        self.wildcard: str | None = None
        self.done, self.wake = threading.Event(), threading.Event()
        self.error: str | None = None
        self.progress_at = time.monotonic()
        self.fetched = 0
        self.resubscribed = 0

    def accept_manifest(self, manifest: BundleManifest) -> None:
        if self.desired is None:
            raise TransferError(f"transfer manifest for {manifest.digest[:12]} with no desired state")
        check_desired(manifest, self.desired)
        self.manifest = manifest
        self.progress_at = time.monotonic()

    def got(self, index: int) -> None:
        self.have.add(index)
        self.fetched += 1
        self.progress_at = time.monotonic()
        self.check_done()

    def check_done(self) -> None:
        if self.manifest is not None and len(self.have) >= len(self.manifest.chunk_sha256):
            self.done.set()
        self.wake.set()

    def fail(self, reason: str) -> None:
        self.error = reason
        self.wake.set()
