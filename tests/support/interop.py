"""Brokers that speak only MQTT 3.1.1 — NATS 2.9 and RabbitMQ 3.10 with their MQTT plugins — each started
from a temp config on free ports (never the machine's own instances)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.support.broker import free_port


class NatsBroker:
    def __init__(self, workdir: Path) -> None:
        self.port, self.client_port = free_port(), free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "nats.conf"
        conf.write_text(f'server_name: edgectl_test_{self.port}\nlisten: 127.0.0.1:{self.client_port}\n'
                        f'jetstream {{ store_dir: "{workdir / "js"}" }}\nmqtt {{ listen: 127.0.0.1:{self.port} }}\n')
        self.proc = subprocess.Popen([shutil.which("nats-server") or "nats-server", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=(workdir / "nats.log").open("wb"))
        self.url = f"mqtt://127.0.0.1:{self.port}"
        wait = threading.Event()
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                wait.wait(0.1)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float, what: str) -> None:
    wait = threading.Event()
    for _ in range(int(seconds * 10)):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            wait.wait(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds} s")


class RabbitBroker:
    """A private RabbitMQ node (its own name, ports and data dir) with the MQTT plugin."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are 0700 root, and the node runs as user rabbitmq.
        workdir = self.workdir = Path(tempfile.mkdtemp(prefix="edgectl-rabbitmq-"))
        self.port, amqp, dist = free_port(), free_port(), free_port()
        (workdir / "rabbitmq.conf").write_text(f"listeners.tcp.default = {amqp}\nmqtt.listeners.tcp.default = "
                                               f"{self.port}\nmqtt.allow_anonymous = true\nloopback_users = none\n")
        (workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        env = {**os.environ, "RABBITMQ_NODENAME": f"edgectl{self.port}@localhost", "RABBITMQ_NODE_PORT": str(amqp),
               "RABBITMQ_DIST_PORT": str(dist), "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins")}
        for key, sub in (("MNESIA_BASE", "mnesia"), ("LOG_BASE", "log"), ("FEATURE_FLAGS_FILE", "ff"),
                         ("QUORUM_DIR", "quorum"), ("STREAM_DIR", "stream"), ("PLUGINS_EXPAND_DIR", "plugins"),
                         ("PID_FILE", "pid")):
            env[f"RABBITMQ_{key}"] = str(workdir / sub)
        (workdir / "mnesia").mkdir()
        (workdir / "log").mkdir()
        user = pwd.getpwnam("rabbitmq")
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)  # Debian's wrapper runs the node as user rabbitmq
        self.proc = subprocess.Popen(["rabbitmq-server"], env=env, stdout=(workdir / "out").open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"mqtt://127.0.0.1:{self.port}"
        wait_port(self.port, self.proc, 90, "rabbitmq-server")

    def stop(self) -> None:
        # Debian's wrapper starts the node through su, in a session of its own: killing our process group
        # left the node running. Kill the whole tree, found while it is still one.
        import psutil

        tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(tree, timeout=10)
        self.proc.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


class NatsCluster:
    """Three NATS servers with JetStream and MQTT, routed into one cluster on loopback."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.client = [free_port() for _ in range(size)]
        self.ports = [free_port() for _ in range(size)]
        self.route = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = []
        for i in range(size):
            node = workdir / f"n{i}"
            node.mkdir(parents=True, exist_ok=True)
            routes = ", ".join(f"nats-route://127.0.0.1:{self.route[j]}" for j in range(size) if j != i)
            conf = node / "nats.conf"
            conf.write_text(f'server_name: edgectl_{self.ports[i]}\nlisten: 127.0.0.1:{self.client[i]}\n'
                            f'jetstream {{ store_dir: "{node / "js"}" }}\n'
                            f'mqtt {{ listen: 127.0.0.1:{self.ports[i]} }}\n'
                            f'cluster {{ name: edgectl; listen: 127.0.0.1:{self.route[i]}; routes: [{routes}] }}\n')
            self.procs.append(subprocess.Popen([shutil.which("nats-server") or "nats-server", "-c", str(conf)],
                                               stdout=subprocess.DEVNULL, stderr=(node / "log").open("wb")))
        for port, proc in zip(self.ports, self.procs, strict=True):
            if proc is not None:
                wait_port(port, proc, 30, "nats-server")

    def url(self, i: int) -> str:
        return f"mqtt://127.0.0.1:{self.ports[i]}"

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None:
            proc.kill()
            proc.wait(10)
            self.procs[i] = None

    def stop(self) -> None:
        for i in range(len(self.procs)):
            self.kill(i)
