"""Shared fixtures: the synthetic runs of app_fixtures.py (numpy only, built once)."""
from __future__ import annotations

import pytest
from app_fixtures import make_run

from trajviz.spec import plugins


@pytest.fixture(autouse=True)
def _plugin_trust_is_per_test():
    """Plugins trusted or declared during a test (``trust``, ``@task_family``) are forgotten
    after it; those declared at import (collection) stay."""
    declared, trusted = dict(plugins._DECLARED), set(plugins._TRUSTED)
    yield
    plugins._DECLARED.clear()
    plugins._DECLARED.update(declared)
    plugins._TRUSTED.clear()
    plugins._TRUSTED.update(trusted)


@pytest.fixture(scope="session")
def run():
    """P = 2: a "pca" and an "exact" view."""
    return make_run()


@pytest.fixture(scope="session")
def run3():
    """3 parameters (so the PCA plane hides something) and a diverged path."""
    return make_run(n_params=3, diverge="reptile")


@pytest.fixture(scope="module")
def tv_browser():
    """Headless Debian chromium through Playwright, one per test module (browser tests)."""
    pytest.importorskip("playwright.sync_api")
    import test_browser  # noqa: F401 - skips where chromium is missing
    from browser_kit import chromium

    with chromium() as browser:
        yield browser
