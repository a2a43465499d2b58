"""A real headless Chromium for the UI tests (Debian's chromium + chromium-driver, via selenium).

``.ci/run`` installs the two packages when they are missing; without them the browser
tests skip with a message that says how to install them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("CMFGIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CMFGIT_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = "needs headless Chromium: apt-get install chromium chromium-driver (and pip install selenium)"

# The machine's network is closed: without these, Chromium keeps trying Google's hosts.
_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1400,1000",
)


def available() -> bool:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return False
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def chrome(allow_files: bool = False) -> Iterator[Any]:
    """A fresh headless Chromium (its own empty profile), quit on exit.

    ``allow_files`` lets pages opened from file:// load their sibling files, as a
    browser does when a user opens a downloaded static site."""
    if not available():
        pytest.skip(MISSING)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in _FLAGS:
        options.add_argument(flag)
    if allow_files:
        options.add_argument("--allow-file-access-from-files")
    profile = tempfile.mkdtemp(prefix="cmfgit-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, css: str, timeout: float = 20) -> Any:
    """The first element matching ``css``, once it is there (a clear failure if it never is)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def wait_until(driver: Any, predicate: Any, timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: predicate(d))
