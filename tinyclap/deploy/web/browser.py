"""Headless Chromium for the page's tests and benchmark (selenium + Debian's chromedriver).

:func:`chromium` starts Debian's ``chromium`` through its ``chromedriver`` (no
browser is downloaded: selenium's driver manager is bypassed by naming the
driver's path), with the page's console collected and, optionally, a wav file
as the fake microphone. :func:`ensure_chromium` is the test set-up: it installs
the Debian packages as root when they are missing, and says why it cannot
otherwise.

Example
-------
>>> with chromium() as driver:  # doctest: +SKIP
...     driver.get("http://127.0.0.1:8000/?audio=audio/dog.wav&labels=dog,rain")
"""

import contextlib
import os
import shutil
import subprocess

PACKAGES = ("chromium", "chromium-driver")


def missing_browser():
    """Why the browser tests cannot run here (``""`` when they can).

    Example
    -------
    >>> isinstance(missing_browser(), str)
    True
    """
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        return "Debian's chromium and chromium-driver are not installed"
    return ""


def ensure_chromium():
    """Install ``chromium`` and ``chromium-driver`` with apt-get (as root) when missing.

    Returns
    -------
    str
        ``""`` when the browser is available, else the reason it is not.
    """
    why = missing_browser()
    if not why or "selenium" in why:
        return why
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{why}, and apt-get cannot install them here (not root): " \
            f"apt-get install {' '.join(PACKAGES)}"  # fmt: skip
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run = subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], capture_output=True,
                         text=True, env=env)  # fmt: skip
    if run.returncode != 0:
        return f"apt-get install {' '.join(PACKAGES)} failed: {run.stderr.strip()[-300:]}"
    return missing_browser()


@contextlib.contextmanager
def chromium(fake_audio=None, deny_microphone=False, width=1100, height=1200):
    """A headless Chromium WebDriver (console logs kept), closed on exit.

    Parameters
    ----------
    fake_audio : str or Path, optional
        A wav file played as the microphone (``--use-file-for-fake-audio-capture``).
    deny_microphone : bool
        Answer microphone requests with "denied".
    width, height : int
        The window's size (screenshots).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)  # fmt: skip
    if deny_microphone:
        options.add_argument("--deny-permission-prompts")
        options.add_argument("--use-fake-device-for-media-stream")
    elif fake_audio is not None:
        options.add_argument("--use-fake-ui-for-media-stream")
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")),
                              options=options)  # fmt: skip
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver):
    """The page's console messages at level SEVERE since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
