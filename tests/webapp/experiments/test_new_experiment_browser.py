"""The new-experiment form in headless Chromium: htmx adds and removes strategy rows,
the experiment page polls while the experiment runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.factories import PASSWORD
from webapp.experiments.models import Experiment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

#: The marks of every browser test module (``pytestmark = BROWSER_MARKS``).
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]
pytestmark = BROWSER_MARKS


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def broker(redis_url: str, settings: Any) -> str:
    """Submissions enqueue to a real (idle) Redis; no worker consumes them here."""
    from workers.celery import app

    settings.CELERY_BROKER_URL = redis_url
    app.conf.broker_url = redis_url
    return redis_url


def wait_for(driver: Any, condition: Any, timeout: float = 10) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#strategy-rows .strategy-row")


def test_it_adds_and_removes_strategy_rows_and_submits(
    browser: Any, live_server: Any, owner: Any, broker: str
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.NAME, "username").send_keys(owner.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "/experiments/" in d.current_url)

    browser.get(f"{live_server.url}/experiments/new/")
    assert len(rows(browser)) == 2
    browser.find_element(By.ID, "add-strategy").click()
    wait_for(browser, lambda d: len(rows(d)) == 3)
    browser.find_element(By.ID, "add-strategy").click()
    wait_for(browser, lambda d: len(rows(d)) == 4)
    rows(browser)[0].find_element(By.CSS_SELECTOR, ".remove-row").click()
    wait_for(browser, lambda d: len(rows(d)) == 3)

    samples = browser.find_element(By.NAME, "n_samples")
    samples.clear()
    samples.send_keys("0")
    browser.find_element(By.CSS_SELECTOR, "form.experiment-form button[type=submit]").click()
    wait_for(browser, lambda d: "greater than or equal to 1" in d.page_source)
    assert len(rows(browser)) == 3
    assert Experiment.objects.count() == 0

    samples = browser.find_element(By.NAME, "n_samples")
    samples.clear()
    samples.send_keys("4")
    browser.find_element(By.CSS_SELECTOR, "form.experiment-form button[type=submit]").click()
    wait_for(browser, lambda d: "/experiments/new/" not in d.current_url)
    experiment = Experiment.objects.get()
    assert experiment.strategies.count() == 3
    assert browser.find_element(By.ID, "progress").is_displayed()
    # The page keeps polling its live fragment while the experiment is queued.
    assert browser.find_element(By.ID, "live").get_attribute("hx-trigger") == "every 2s"


def test_it_shows_only_the_chosen_dataset_sources_fields(
    browser: Any, live_server: Any, owner: Any, team: Any
) -> None:
    import os

    from selenium.webdriver.common.by import By

    from tests.webapp.experiments.test_new_saved_dataset import saved

    saved(team, name="Quiz <b>one</b>")
    browser.get(live_server.url + "/login/")
    browser.find_element(By.NAME, "username").send_keys(owner.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]"
                         ).click()
    browser.get(live_server.url + "/experiments/new/")

    def shown(name: str) -> bool:
        return bool(browser.find_element(By.CSS_SELECTOR, f".field-{name}").is_displayed())

    assert shown("arithmetic_size") and not shown("dataset") and not shown("prompts")
    browser.find_element(By.CSS_SELECTOR, "input[name=dataset_source][value=saved]").click()
    assert shown("dataset") and shown("subset_mode")
    assert not shown("arithmetic_size") and not shown("code_file")
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#id_dataset option")]
    assert "Quiz <b>one</b>" in options  # escaped text, not markup
    if os.environ.get("STRATLAB_SCREENSHOTS"):
        browser.save_screenshot(os.path.join(os.environ["STRATLAB_SCREENSHOTS"],
                                             "new-experiment-saved.png"))
