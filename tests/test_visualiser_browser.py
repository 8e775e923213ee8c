"""The visualiser's page in headless Chromium (Debian's chromium and chromium-driver, Selenium)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Project, wait_until
from test_visualiser import FLOWFILE, serve

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = os.environ.get("FLOW_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("FLOW_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
)
XSS = "<img src=x onerror=alert(1)>"
XSS_FLOWFILE = f"""
class Evil(flow.Task):
    label = flow.Parameter(default={XSS!r})
    def output(self):
        return flow.LocalTarget("out/evil.txt")
    def run(self):
        self.set_status_message({XSS!r})
        raise RuntimeError({XSS!r})
"""


def open_browser() -> Any:
    """A fresh headless Chromium, or a skip saying what is missing."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.skip(f"needs {CHROMIUM} and {DRIVER} (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="flow-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    except Exception as exc:  # a driver that cannot start here: say so rather than fail
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"headless Chromium did not start: {exc}")
    driver.set_page_load_timeout(60)
    driver._flow_profile = profile  # removed with the browser
    return driver


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = open_browser()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(driver._flow_profile, ignore_errors=True)


def wait_for(driver: Any, script: str, what: str) -> Any:
    """Poll a JavaScript expression in the page until it is truthy; return its value."""
    got: list[Any] = []

    def ready() -> bool:
        got[:] = [driver.execute_script(f"return {script}")]
        return bool(got[0])

    wait_until(ready, what)
    return got[0]


def click_task(driver: Any, tid: str | None) -> None:
    """Click the graph node of ``tid`` (None: the only node)."""
    driver.execute_script(
        "var nodes = Array.from(document.querySelectorAll('#viewport .node'));"
        "var n = nodes.find(e => arguments[0] === null || e.getAttribute('data-id') === arguments[0]);"
        "n.dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        tid,
    )


def text_of(driver: Any, css: str) -> str:
    return driver.execute_script(  # type: ignore[no-any-return]
        "var e = document.querySelector(arguments[0]); return e ? e.textContent : ''", css
    )


def test_page_lists_runs_and_shows_a_failed_tasks_output(project: Project, browser: Any) -> None:
    project.flowfile(FLOWFILE)
    assert project.run("All").returncode == 0
    assert project.run("Broken").returncode == 1
    _, url = serve(project)
    browser.get(url)
    assert wait_for(browser, "document.querySelectorAll('#run-list li').length == 2", "runs")
    statuses = [
        li.get_attribute("data-status")
        for li in browser.find_elements(By.CSS_SELECTOR, "#run-list li")
    ]
    assert statuses == ["failed", "succeeded"]
    wait_for(browser, "document.querySelector('#viewport .node[data-id=\"Broken()\"]')", "graph")
    click_task(browser, "Broken()")
    wait_for(browser, "document.querySelector('#task-output')", "the output panel")
    assert "broken on purpose" in text_of(browser, "#task-output")
    assert "failed" in text_of(browser, "#counts")


def test_page_shows_a_live_runs_running_task_with_its_message(
    project: Project, browser: Any
) -> None:
    project.flowfile(FLOWFILE)
    _, url = serve(project)
    browser.get(url)
    wait_for(browser, "window.flowReady", "the page")
    build = project.start("Slow")
    wait_until(lambda: (project.root / "started.flag").exists(), "Slow to start", proc=build.proc)
    node = '#viewport .node[data-id="Slow()"][data-status="running"]'
    wait_for(browser, f"document.querySelector('{node}')", "the running task, without a reload")
    click_task(browser, "Slow()")
    wait_for(browser, "document.querySelector('#panel dl')", "the task panel")
    assert "waiting for go.flag" in text_of(browser, "#panel")
    (project.root / "go.flag").touch()
    assert build.finish()[0] == 0
    done = '#viewport .node[data-id="Slow()"][data-status="ran"]'
    wait_for(browser, f"document.querySelector('{done}')", "the task to turn ran")


def test_task_data_is_rendered_as_text_and_never_runs(project: Project, browser: Any) -> None:
    project.flowfile(XSS_FLOWFILE)
    assert project.run("Evil").returncode == 1
    _, url = serve(project)
    browser.get(url)
    wait_for(browser, "document.querySelector('#viewport .node')", "the graph")
    click_task(browser, None)
    wait_for(browser, "document.querySelector('#panel .param-value')", "the parameters")
    assert text_of(browser, "#panel .param-value") == XSS
    assert XSS in text_of(browser, "#task-output")
    assert browser.find_elements(By.CSS_SELECTOR, "#panel img, #viewport img, #run-list img") == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - the property raises when no alert is open


def test_report_opens_from_a_file_without_a_server(project: Project, browser: Any) -> None:
    project.flowfile(XSS_FLOWFILE + FLOWFILE)
    assert project.run("All", "--report", "report.html").returncode == 0
    assert project.run("Evil", "--report", "evil.html").returncode == 1
    browser.get(Path(project.root / "report.html").as_uri())
    wait_for(browser, "document.querySelectorAll('#viewport .node').length == 4", "the graph")
    assert "critical path" in text_of(browser, "#critical")
    browser.get(Path(project.root / "evil.html").as_uri())
    wait_for(browser, "document.querySelector('#viewport .node')", "the graph")
    click_task(browser, None)
    assert text_of(browser, "#panel .param-value") == XSS
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018


def test_a_large_run_is_grouped_by_family_and_searchable(project: Project, browser: Any) -> None:
    # Premise: above 1,500 tasks one node per family is drawn; every task stays findable by id.
    project.flowfile(
        """
        class Leaf(flow.Task):
            i = flow.IntParameter()
            def run(self):
                pass
            def complete(self):
                return False

        # A family named like an Object property ("constructor") once blanked the page.
        class constructor(flow.WrapperTask):
            def requires(self):
                return [Leaf(i=i) for i in range(1600)]
        """
    )
    assert project.run("constructor", timeout=300).returncode == 0
    _, url = serve(project)
    browser.get(url)
    wait_for(browser, "document.querySelectorAll('#viewport .node').length == 2", "2 families")
    browser.find_element(By.ID, "search").send_keys("Leaf(i=1234)")
    wait_for(browser, "document.querySelectorAll('#matches li').length == 1", "one match")
    browser.find_element(By.CSS_SELECTOR, "#matches li").click()
    wait_for(browser, "document.getElementById('task-id')", "the task panel")
    assert text_of(browser, "#task-id") == "Leaf(i=1234)"
    assert "1600 ran" in text_of(browser, "#counts")
