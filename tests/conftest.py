"""Shared fixtures: the synthetic runs of app_fixtures.py (numpy only, built once)."""
from __future__ import annotations

import pytest
from app_fixtures import make_run


@pytest.fixture(scope="session")
def run():
    """P = 2: a "pca" and an "exact" view."""
    return make_run()


@pytest.fixture(scope="session")
def run3():
    """3 parameters (so the PCA plane hides something) and a diverged path."""
    return make_run(n_params=3, diverge="reptile")
