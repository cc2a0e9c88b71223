from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import clean_env

# Fixtures shared by folders: the lifecycle stack (``life``) for service and end-to-end tests.
pytest_plugins = ["tests.fixtures.lifecycle"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    clean_env()
    monkeypatch.chdir(tmp_path)  # no .env or fwbot.toml from the checkout leaks in
    yield


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared reference material is not beside this checkout)")
    return SHARED


@pytest.fixture
def stack(tmp_path):
    from tests.harness import start_stack

    s = start_stack(tmp_path)
    yield s
    s.stop()


os.environ.setdefault("HYPOTHESIS_PROFILE", "default")
