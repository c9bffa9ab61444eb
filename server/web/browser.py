"""Headless Chromium for the web map's tests, screenshots and benchmarks.

Debian's ``chromium`` driven through Debian's ``chromedriver`` by selenium (PyPI,
the ``test`` extra), with the flags DESIGN's "Known pitfalls" lists: WebGL 2 comes
from SwiftShader (software), so a first frame takes a second or more. Nothing here is
needed to *serve* the map; :func:`missing` says why a browser cannot be started, so
tests skip with that reason instead of failing where Chromium is not installed.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

__all__ = ["CHROMEDRIVER", "CHROMIUM", "missing", "new_browser", "sign_in", "wait_for"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing() -> str | None:
    """Why a browser cannot be started here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists() and shutil.which(Path(path).name) is None:
            return f"{path} not found (apt-get install -y {pkg}; .ci/run does it)"
    return None


def new_browser(width: int = 1400, height: int = 900):
    """A headless Chromium (selenium WebDriver) with a ``width`` x ``height`` window."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--enable-unsafe-swiftshader",
              "--use-angle=swiftshader", "--disable-dev-shm-usage",
              "--force-device-scale-factor=1", f"--window-size={width},{height}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(drv), options=opts)


def wait_for(driver, script: str, timeout_s: float = 30.0, poll_s: float = 0.05):
    """Poll ``return <script>`` until it is truthy; returns its value or raises."""
    end = time.monotonic() + timeout_s
    while True:
        v = driver.execute_script("return " + script)
        if v:
            return v
        if time.monotonic() > end:
            err = driver.execute_script("return window.skytwin && window.skytwin.error")
            raise TimeoutError(f"page never satisfied {script!r} in {timeout_s} s "
                               f"(page error: {err})")
        time.sleep(poll_s)


def sign_in(driver, url: str, token: str, timeout_s: float = 60.0) -> float:
    """Open the map, sign in with ``token``, wait for the first full render.

    Returns the page's own time from the sign-in click to first full render [ms].
    """
    # A token left in this tab's sessionStorage signs the page in by itself, and the
    # old page's sign-in still running may store it again between the clear and the
    # reload (then the form is hidden: "element not interactable", seen once in CI):
    # reload until the page stands signed out with the form shown.
    driver.get(url)
    end = time.monotonic() + timeout_s
    while True:
        driver.execute_script("sessionStorage.clear()")
        driver.get(url)
        box = driver.find_element("id", "token")
        if box.is_displayed() and driver.execute_script(
                "return sessionStorage.getItem('skytwin-token') === null"):
            break
        if time.monotonic() > end:
            raise TimeoutError(f"the map at {url} never showed its sign-in form "
                               f"in {timeout_s} s")
        time.sleep(0.1)
    box.clear()
    box.send_keys(token)
    driver.find_element("id", "signin-button").click()
    wait_for(driver, "window.skytwin.ready", timeout_s)
    return float(driver.execute_script(
        "return window.skytwin.firstRenderMs - window.skytwin.signInMs"))
