"""Brokers that speak only MQTT 3.1.1 — NATS 2.9 and RabbitMQ 3.10 with their MQTT plugins — each started
from a temp config on free ports (never the machine's own instances)."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from fleet.mqtt import BrokerSettings, MqttClient
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
    """A private RabbitMQ node (its own name, ports and data dir) with the MQTT plugin. In a cluster, the nodes
    share their own epmd port and Erlang cookie, so they never meet the machine's own RabbitMQ."""

    def __init__(self, epmd_port: int | None = None, cookie: str | None = None) -> None:
        # Not under pytest's tmp_path: its parents are 0700 root, and the node runs as user rabbitmq.
        workdir = self.workdir = Path(tempfile.mkdtemp(prefix="edgectl-rabbitmq-"))
        self.port, amqp, dist = free_port(), free_port(), free_port()
        self.node = f"edgectl{self.port}@localhost"
        (workdir / "rabbitmq.conf").write_text(f"listeners.tcp.default = {amqp}\nmqtt.listeners.tcp.default = "
                                               f"{self.port}\nmqtt.allow_anonymous = true\nloopback_users = none\n")
        (workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        self.env = {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(amqp),
                    "RABBITMQ_DIST_PORT": str(dist), "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins")}
        if epmd_port is not None:
            self.env["ERL_EPMD_PORT"] = str(epmd_port)
        if cookie is not None:
            self.env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = f"-setcookie {cookie}"
            self.env["RABBITMQ_CTL_ERL_ARGS"] = f"-setcookie {cookie}"
        for key, sub in (("MNESIA_BASE", "mnesia"), ("LOG_BASE", "log"), ("FEATURE_FLAGS_FILE", "ff"),
                         ("QUORUM_DIR", "quorum"), ("STREAM_DIR", "stream"), ("PLUGINS_EXPAND_DIR", "plugins"),
                         ("PID_FILE", "pid")):
            self.env[f"RABBITMQ_{key}"] = str(workdir / sub)
        (workdir / "mnesia").mkdir()
        (workdir / "log").mkdir()
        user = pwd.getpwnam("rabbitmq")
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)  # Debian's wrapper runs the node as user rabbitmq
        self.proc = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=(workdir / "out").open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"mqtt://127.0.0.1:{self.port}"
        wait_port(self.port, self.proc, 90, "rabbitmq-server")

    def ctl(self, *args: str, timeout: float = 120) -> None:
        """rabbitmqctl against this node (Debian's wrapper keeps the environment through su)."""
        done = subprocess.run(["rabbitmqctl", "-n", self.node, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout.strip()} {done.stderr.strip()}")

    def kill(self) -> None:
        """The whole node, at once (kill -9): its beam, its su and its shell."""
        import psutil

        # Debian's wrapper starts the node through su, in a session of its own: killing our process group
        # left the node running. Kill the whole tree, found while it is still one.
        if self.proc.poll() is not None:
            return
        tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(tree, timeout=10)
        self.proc.wait(10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


class RabbitCluster:
    """Two (or more) private RabbitMQ nodes joined into one cluster, with their own epmd and cookie."""

    def __init__(self, size: int = 2) -> None:
        self.epmd_port, cookie = free_port(), secrets.token_hex(16)
        self.nodes = [RabbitBroker(self.epmd_port, cookie)]
        try:
            for _ in range(size - 1):
                node = RabbitBroker(self.epmd_port, cookie)
                self.nodes.append(node)
                node.ctl("stop_app")
                node.ctl("join_cluster", self.nodes[0].node)
                node.ctl("start_app")
                wait_port(node.port, node.proc, 90, "rabbitmq-server (joined)")
        except BaseException:
            self.stop()
            raise
        self.ports = [n.port for n in self.nodes]

    def url(self, i: int) -> str:
        return self.nodes[i].url

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        # The epmd our nodes started on their own port outlives them: stop it too.
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], env={**os.environ,
                       "ERL_EPMD_PORT": str(self.epmd_port)}, capture_output=True, check=False, timeout=10)


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
                            # Without it, the MQTT streams were made with fewer replicas than nodes, and one
                            # node's death left them without quorum ("$MQTT_sess has NO quorum, stalled").
                            f'mqtt {{ listen: 127.0.0.1:{self.ports[i]}; stream_replicas: {size} }}\n'
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


def wait_formed(cluster: RabbitCluster | NatsCluster, seconds: float = 90) -> None:
    """MQTT answers only once the cluster has elected its leaders (JetStream's, RabbitMQ's client-id tracker)."""
    deadline = time.monotonic() + seconds
    for i in range(len(cluster.ports)):
        while True:
            client = MqttClient(f"probe-{i}", BrokerSettings.from_url(cluster.url(i)))
            ok = client.start(wait_s=5)
            client.stop()
            if ok:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster node {i} never accepted MQTT")
