"""open_storage: workers racing to create the schema of an empty database."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")
sqlalchemy = pytest.importorskip("sqlalchemy")


def test_schema_creation_race_is_retried(tmp_path, monkeypatch):
    # Two workers started together on an empty PostgreSQL database: the loser of the CREATE
    # TABLE race gets an IntegrityError; opening again must then succeed (seen in CI).
    from ionfno.tuning import storage as st

    real = optuna.storages.RDBStorage
    calls = []

    def flaky(url, **kwargs):
        calls.append(url)
        if len(calls) < 3:
            raise sqlalchemy.exc.IntegrityError("CREATE TABLE studies", {}, Exception("duplicate key"))
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    monkeypatch.setattr(st.time, "sleep", lambda s: None)
    storage = st.open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=None)
    assert len(calls) == 3
    monkeypatch.undo()
    assert isinstance(storage, real)
    assert optuna.study.get_all_study_names(storage=storage) == []


def test_a_persistent_integrity_error_is_reported(tmp_path, monkeypatch):
    from ionfno.tuning import storage as st

    calls = []

    def broken(url, **kwargs):
        calls.append(url)
        raise sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("constraint"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", broken)
    monkeypatch.setattr(st.time, "sleep", lambda s: None)
    with pytest.raises(ValueError, match="Cannot open storage .*IntegrityError"):
        st.open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=None)
    assert len(calls) == 6  # 5 retries, then the error is reported, not retried for ever
