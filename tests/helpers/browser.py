"""A real headless Chromium driven by Selenium, for the dashboard tests and bench/dashboard.py.

    from tests.helpers.browser import browser_problem, chrome
    if (why := browser_problem()): pytest.skip(why)
    with chrome() as driver:
        driver.get(url)

Debian's `chromium` and `chromium-driver` packages (apt, installed by .ci/run) and the `selenium`
package (the [test] extra). The driver binary is given explicitly, so Selenium never tries to
download one (the test machines have no internet).
"""
from __future__ import annotations

import contextlib
import shutil
import time
from typing import Any, Callable, Iterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser_problem() -> str | None:
    """Why a headless browser cannot be started here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not shutil.which(path):
            return f"{path} not found (apt install {package}; .ci/run installs it)"
    return None


@contextlib.contextmanager
def chrome(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium WebDriver, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--enable-precise-memory-info", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``condition()`` until it returns something truthy; AssertionError saying ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:          # the element is not there yet, the page is re-rendering
            last_exc = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                         + (f" (last error: {type(last_exc).__name__}: {last_exc})" if last_exc else ""))


def click(driver: Any, css: str, what: str, timeout: float = 10) -> None:
    """Click the element ``css`` selects, again if the page re-rendered it between finding and clicking.

    The dashboard redraws a card on every state message, so a found element can go stale before the click.
    """
    wait_until(lambda: driver.find_element("css selector", css).click() or True, timeout, what)
