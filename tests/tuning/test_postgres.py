"""Two `ionfno tune` processes share one study in PostgreSQL (needs IONFNO_TEST_POSTGRES_URL).

Start a local server with ``export IONFNO_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)``, then
``pytest -m postgres tests/tuning``.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

optuna = pytest.importorskip("optuna")

from .test_tune import _env, _tune_cmd, space_file  # noqa: E402,F401  (fixture re-export)

URL = os.environ.get("IONFNO_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="set IONFNO_TEST_POSTGRES_URL (bash .ci/postgres.sh prints one)"),
]


def test_two_workers_share_a_postgres_study(tiny_fhn, space_file, tmp_path):  # noqa: F811
    pytest.importorskip("psycopg2")
    study = f"test-{uuid.uuid4().hex[:12]}"  # a fresh study in a server that may hold others
    n = 5
    procs = [
        subprocess.Popen(
            _tune_cmd(tiny_fhn, tmp_path / f"worker{i}", space_file, n, "--storage", URL, "--study", study),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), logs

    from ionfno.tuning.storage import open_storage

    storage = open_storage(URL, heartbeat_interval=None)  # picks the installed driver
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == n
    assert all(t.user_attrs.get("surplus") for t in trials if t.state.name == "FAIL")
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    assert len({t.number for t in trials}) == len(trials)  # no trial counted twice
    configs = [json.dumps(t.params, sort_keys=True) for t in finished]
    assert len(set(configs)) == len(configs)  # no configuration trained twice
    workers = {t.user_attrs["worker"]["pid"] for t in finished}
    assert len(workers) == 2
    # Each worker wrote its own trials' folders.
    for t in finished:
        assert os.path.isfile(os.path.join(t.user_attrs["trial_dir"], "trial.json"))
