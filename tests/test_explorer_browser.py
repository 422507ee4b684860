"""The explorer pages in a real browser: Debian's headless Chromium driven by Selenium.

Each page is written by the command line (``--html``), opened from disk, stepped through with
its buttons and keys, and read back: the gradients it shows must be the engine's, the console
must stay free of errors, and the page must make no network request (Chrome's performance log
records every request the page sends; the Resource Timing API must list none either).
Screenshots go to $CHAINRULE_ARTIFACTS (else the test's tmp folder).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainrule.app import cli
from chainrule.app.commands import graph as graph_command

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if os.environ.get("CI"):
        pytest.fail("chromium and chromium-driver are missing; CI must install them")
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--window-size=1500,1000", "--disable-gpu"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run its sandbox as root
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture()
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("CHAINRULE_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser, page: Path) -> None:
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get_log("performance")
    browser.get(page.as_uri())


def step_backward_until_done(browser) -> int:
    button = browser.find_element(By.ID, "backward")
    presses = 0
    while button.is_enabled():
        button.click()
        presses += 1
        assert presses < 500
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "true"
    return presses


def shown_gradients(browser) -> dict[str, tuple[str, str]]:
    """The summary table: name -> (the text shown, the exact number in data-value/data-norm)."""
    out = {}
    for row in browser.find_elements(By.CSS_SELECTOR, "#summary tr[data-node]"):
        name, cell = row.find_elements(By.TAG_NAME, "td")
        exact = cell.get_attribute("data-value") or cell.get_attribute("data-norm")
        out[name.text] = (cell.text, exact)
    return out


def assert_clean(browser, page: Path) -> None:
    """No console errors, and no request but the page itself."""
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    assert set(requests) <= {page.as_uri()}
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


@pytest.mark.parametrize(
    ("values", "grads"),
    [(("x=-2", "y=5", "z=-4"), (-4, -4, 3)), (("x=3", "y=-1", "z=2"), (2, 2, 2))],
)
def test_circuit_page_shows_the_cheatsheets_gradients(browser, tmp_path, artifacts, values, grads):
    page = tmp_path / "circuit.html"
    assert cli.main(["circuit", "(x+y)*z", *values, "--html", str(page)]) == 0
    open_page(browser, page)
    assert browser.find_element(By.ID, "position").text == "forward 0/2"
    assert step_backward_until_done(browser) == 3  # forward done at once, then the seed + 2 gates
    shown = shown_gradients(browser)
    assert {k: float(v[1]) for k, v in shown.items()} == dict(zip("xyz", map(float, grads)))
    assert {k: v[0] for k, v in shown.items()} == dict(zip("xyz", map(str, grads)))
    # the last step is the add gate: upstream z, local 1 and 1, sent z to x and y
    sent = browser.find_elements(By.CSS_SELECTOR, "#panel table.sent td.sent")
    assert [float(c.get_attribute("data-value")) for c in sent] == [grads[0], grads[1]]
    assert "One forward + one backward pass gave the gradient of every weight." in (
        browser.find_element(By.ID, "summary").text
    )
    browser.save_screenshot(str(artifacts / f"circuit-{'_'.join(values)}.png"))
    assert_clean(browser, page)


def test_circuit_page_keys_and_hover(browser, tmp_path):
    page = tmp_path / "keys.html"
    assert cli.main(["circuit", "(x+y)*z", "x=-2", "y=5", "z=-4", "--html", str(page)]) == 0
    open_page(browser, page)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "position").text == "forward 1/2"
    assert "Forward 1 of 2: gate + computes q" in browser.find_element(By.ID, "panel").text
    q_value = browser.find_element(By.CSS_SELECTOR, 'text.value[data-node="q"]')
    f_value = browser.find_element(By.CSS_SELECTOR, 'text.value[data-node="f"]')
    assert q_value.is_displayed() and not f_value.is_displayed()
    body.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert browser.find_element(By.ID, "position").text == "backward 2/3"
    panel = browser.find_element(By.ID, "panel").text
    assert "upstream gradient df/df: 1" in panel and "∂f/∂q = z" in panel
    ActionChains(browser).move_to_element(
        browser.find_element(By.CSS_SELECTOR, '.mark[data-node="z"]')
    ).perform()
    tip = browser.find_element(By.ID, "tooltip")
    assert tip.is_displayed() and "value: -4" in tip.text and "gradient: 3" in tip.text
    body.send_keys("r")
    assert browser.find_element(By.ID, "position").text == "forward 0/2"
    assert_clean(browser, page)


def test_two_layer_step_shows_every_parameters_gradient_norm(browser, tmp_path, artifacts):
    page = tmp_path / "step.html"
    args = ["graph", "--model", "two-layer"]
    assert cli.main([*args, "--html", str(page)]) == 0
    # the engine's gradients, by the same command's step without the explorer
    reference = graph_command.step(cli.build_parser().parse_args(args))
    norms = {
        n.label: float(np.linalg.norm(n.backward.astype(np.float64)))
        for n in reference.nodes
        if n.kind == "param"
    }
    assert set(norms) == {"W1", "b1", "W2", "b2"}
    open_page(browser, page)
    for _ in range(6):
        browser.find_element(By.ID, "backward").click()
    browser.save_screenshot(str(artifacts / "two-layer-mid-backward.png"))
    step_backward_until_done(browser)
    shown = shown_gradients(browser)
    assert set(shown) == set(norms)
    for name, norm in norms.items():
        text, exact = shown[name]
        assert f"{float(text.rpartition('= ')[2]):.4g}" == f"{norm:.4g}", name
        assert f"{float(exact):.4g}" == f"{norm:.4g}", name
    browser.save_screenshot(str(artifacts / "two-layer-done.png"))
    assert_clean(browser, page)
