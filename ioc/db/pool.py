"""asyncpg pools bound to one namespace's schema, and the TLS every connection uses."""

from __future__ import annotations

import ssl
from typing import Any

import asyncpg

from ioc.settings import Settings


class DatabaseSecurityError(ValueError):
    """The TLS material named in the database settings cannot be loaded."""


def ssl_option(settings: Settings) -> ssl.SSLContext | str | None:
    """asyncpg's ``ssl`` argument for ``IOC_DATABASE__SSL*``; None leaves it to the URL.

    Modes that never check the server (disable, allow, prefer) go to asyncpg as they are,
    keeping its fall-back between plain and TLS. The others become a context built here,
    so the CA, the client key and the host-name check are exactly the settings' and not
    files asyncpg would look for under ``~/.postgresql``.
    """
    db = settings.database
    if db.sslmode is None or db.sslmode in ("disable", "allow", "prefer"):
        return db.sslmode
    verify = db.sslmode != "require" or db.sslrootcert is not None
    try:
        if verify:
            context = ssl.create_default_context(
                cafile=str(db.sslrootcert) if db.sslrootcert else None
            )
            context.check_hostname = db.sslmode == "verify-full"
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    except ssl.SSLError as exc:
        raise DatabaseSecurityError(
            f"database TLS: cannot read the CA {db.sslrootcert}: {exc}"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if db.sslcert is not None and db.sslkey is not None:
        password = db.sslkey_password.get_secret_value() if db.sslkey_password else None
        try:
            context.load_cert_chain(db.sslcert, db.sslkey, password)
        except ssl.SSLError as exc:
            raise DatabaseSecurityError(
                f"database TLS: cannot load the client certificate {db.sslcert} "
                f"with key {db.sslkey}: {exc.reason or exc}"
            ) from None
    return context


def connect_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every ``asyncpg.connect``/``create_pool`` of the project adds to
    the DSN: TLS when the settings ask for it."""
    option = ssl_option(settings)
    return {} if option is None else {"ssl": option}


async def create_pool(
    settings: Settings, *, min_size: int = 0, max_size: int | None = None
) -> asyncpg.Pool:
    """A pool whose connections see the namespace's schema first.

    ``min_size=0`` opens connections on demand, so a process can start while the
    database is down and connect once it is back. ``max_size`` defaults to
    ``IOC_DATABASE__POOL_MAX_SIZE``.
    """
    db = settings.database
    pool = await asyncpg.create_pool(
        settings.dsn,
        min_size=min_size,
        max_size=max_size or db.pool_max_size,
        timeout=5,
        command_timeout=30,
        server_settings={"search_path": f"{settings.db_schema},public"},
        **connect_options(settings),
    )
    assert pool is not None
    return pool
