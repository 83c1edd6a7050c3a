"""A small certificate authority for per-device TLS identities (mosquitto `use_identity_as_username`).

`edgectl ca init` makes the CA; `edgectl ca issue NAME` a client certificate whose CN is the device id (or the
operator's name); `--server HOST` a broker certificate. Keys are ECDSA P-256, files are PEM.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import paths
from .errors import FleetError

CA_KEY, CA_CERT = "ca.key", "ca.pem"


def ca_dir() -> Path:
    return paths.home() / "ca"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def init(directory: Path | None = None, name: str = "edgectl fleet CA", days: int = 3650,
         force: bool = False) -> Path:
    directory = directory or ca_dir()
    if (directory / CA_KEY).exists() and not force:
        raise FleetError(f"{directory / CA_KEY}: a CA exists already (use --force to replace it)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(directory / CA_KEY, key)
    (directory / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory / CA_CERT


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    except FileNotFoundError as exc:
        raise FleetError(f"{directory}: no CA; create one with `edgectl ca init`") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FleetError(f"{directory / CA_KEY}: not an EC key")
    return key, cert


def issue(name: str, out: Path, server_hosts: list[str] | None = None, directory: Path | None = None,
          days: int = 825) -> tuple[Path, Path]:
    """A client certificate with CN=name (the MQTT username), or a server one for server_hosts."""
    ca_key, ca_cert = _load_ca(directory or ca_dir())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_hosts else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if server_hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in server_hosts]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / f"{name}.pem", out / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return cert_path, key_path


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


ACL = """# edgectl: each device reads and writes only its own topics, reads every bundle, and cannot set its
# own desired model; the operator (edgectl) reads and writes everything under the prefix.
user {operator}
topic readwrite {prefix}/#

pattern read {prefix}/bundles/#
pattern readwrite {prefix}/%u/status
pattern readwrite {prefix}/%u/telemetry
pattern readwrite {prefix}/%u/events
pattern readwrite {prefix}/%u/results
pattern read {prefix}/%u/desired
pattern read {prefix}/%u/desired/#
pattern read {prefix}/%u/cmd/#
pattern write {prefix}/%u/reply/#
"""


def mosquitto_config(port: int, ca: Path, cert: Path, key: Path, acl: Path, bind: str = "127.0.0.1") -> str:
    return (f"listener {port} {bind}\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate true\n"
            f"use_identity_as_username true\nallow_anonymous false\nacl_file {acl}\n")
