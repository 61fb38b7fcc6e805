"""DATABASE_URL checked before it is used: its form, its backend, and where a SQLite file lives.

Each check returns one line for the operator (naming DATABASE_URL, never quoting the URL, which
may hold a password) instead of the traceback SQLAlchemy would give.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from storage.db import DatabaseError

# The drivers the bot ships with: pysqlite (the standard library) and psycopg 3.
SUPPORTED = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")
EXAMPLES = "sqlite:///incidents.db or postgresql://user:password@host/dbname"


class DatabaseUrlError(DatabaseError):
    """DATABASE_URL names no database the bot can open; the message is safe to show."""


def url_problem(url: str) -> str | None:
    """Why `url` is not a database URL the bot supports, or None when it is."""
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return f"not a database URL: use {EXAMPLES}"
    if parsed.drivername not in SUPPORTED:
        backend = parsed.drivername.split("+")[0]
        if backend in SUPPORTED:  # a known database through a driver the bot does not ship
            return f"unsupported driver {parsed.drivername!r} (psycopg 3 and pysqlite only): use {EXAMPLES}"
        return f"unsupported database {backend!r}: use {EXAMPLES}"
    return None


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and for an in-memory SQLite database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def require_existing(url: str) -> None:
    """For the read-only commands: the SQLite file must be there (they never create one)."""
    path = sqlite_file(url)
    if path is None:
        return
    if not path.parent.is_dir():
        raise DatabaseUrlError(f"DATABASE_URL: no folder {path.parent} (and so no database at {path})")
    if not path.exists():
        raise DatabaseUrlError(f"DATABASE_URL: no database at {path}")
    _require_sqlite_file(path)


def require_creatable(url: str) -> None:
    """For `run`, `seed` and `db upgrade`: a new SQLite file is created, a missing folder is not
    (a mistyped path must not leave a tree of folders behind)."""
    path = sqlite_file(url)
    if path is None:
        return
    if path.exists():
        _require_sqlite_file(path)
    elif not path.parent.is_dir():
        raise DatabaseUrlError(
            f"DATABASE_URL: no folder {path.parent} for the database {path.name}: create the folder first"
        )


# Every SQLite database file starts so (https://www.sqlite.org/fileformat.html); an empty file is a
# new, empty database.
SQLITE_HEADER = b"SQLite format 3\x00"


def _require_sqlite_file(path: Path) -> None:
    if path.is_dir():
        raise DatabaseUrlError(f"DATABASE_URL: {path} is a folder, not a database file")
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise DatabaseUrlError(f"DATABASE_URL: cannot read {path} ({exc.strerror})") from None
    if head and head != SQLITE_HEADER:
        raise DatabaseUrlError(f"DATABASE_URL: {path} is not a SQLite database")


def not_a_database(exc: BaseException) -> bool:
    """SQLite's answer when the file exists but holds something else (a text file, a backup archive)."""
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.DatabaseError) and "file is not a database" in str(orig)


@contextlib.contextmanager
def explained(url: str) -> Iterator[None]:
    """Around the first use of a database: a file that is not one becomes one line."""
    try:
        yield
    except sa.exc.DatabaseError as exc:
        if not not_a_database(exc):
            raise
        path = sqlite_file(url)
        raise DatabaseUrlError(f"DATABASE_URL: {path or 'the file'} is not a SQLite database") from None
