"""TLS material for tests: a throw-away CA, server and client certificates as PEM files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one test PKI: the CA, a server certificate for the loopback and a
    client certificate whose common name is ``client_name``."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_name: str
    # The client key again, encrypted with ``KEY_PASSWORD``.
    client_key_encrypted: Path
    # A CA that signed none of these.
    other_ca: Path


KEY_PASSWORD = "key-pass-4f1c"


def make_tls_files(directory: Path, *, client_name: str = "ioc") -> TlsFiles:
    """Write a fresh CA, a server certificate for 127.0.0.1/localhost and a client
    certificate into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="localhost")
    client = ca.issue_cert(f"{client_name}@clients.test", common_name=client_name)
    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_name=client_name,
        client_key_encrypted=directory / "client-encrypted.key",
        other_ca=directory / "other-ca.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    trustme.CA().cert_pem.write_to_path(str(files.other_ca))
    files.server_cert.write_bytes(b"".join(p.bytes() for p in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(files.server_key))
    files.client_cert.write_bytes(b"".join(p.bytes() for p in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(files.client_key))
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    files.client_key_encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    for path in (files.server_key, files.client_key, files.client_key_encrypted):
        path.chmod(0o600)
    return files
