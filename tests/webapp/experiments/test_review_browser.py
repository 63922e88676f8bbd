"""The review flow in headless Chromium: a filter swaps the problem list with htmx (the
URL follows, the page does not reload) and the keyboard walks the filter's problems."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.factories import PASSWORD
from tests.webapp.experiments.test_new_experiment_browser import (  # noqa: F401
    BROWSER_MARKS,
    browser,
    wait_for,
)

pytestmark = BROWSER_MARKS


def shoot(driver: Any, name: str) -> None:
    if os.environ.get("STRATLAB_SCREENSHOTS"):
        driver.save_screenshot(os.path.join(os.environ["STRATLAB_SCREENSHOTS"], name))


def grid_indices(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.find_element(By.CSS_SELECTOR, "td a").text for row in
            driver.find_elements(By.CSS_SELECTOR, "#problem-grid tbody tr")]


def test_it_swaps_the_filtered_list_and_walks_it_with_the_keyboard(
    browser: Any, live_server: Any, team: Any, owner: Any, monkeypatch: Any  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.webapp.experiments.review_data import build
    from tests.webapp.experiments.test_compare import SECOND
    from webapp import queue

    monkeypatch.setattr(queue, "send", lambda *args: None)  # nothing to generate here
    experiment = build(team, name="Review run")
    other = build(team, SECOND, seed=1, name="Second run")
    pk = {p.index: p.pk for p in experiment.problems.all()}

    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.NAME, "username").send_keys(owner.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(browser, lambda d: "/login/" not in d.current_url)

    page = f"{live_server.url}/experiments/{experiment.pk}/"
    browser.get(page)
    assert grid_indices(browser) == ["0", "1", "2", "3", "4"]
    browser.execute_script("window.notReloaded = true;")
    browser.find_element(By.CSS_SELECTOR, 'a.filter[data-filter="disagree"]').click()
    wait_for(browser, lambda d: "filter=disagree" in d.current_url)
    wait_for(browser, lambda d: grid_indices(d) == ["3", "4"])
    assert browser.execute_script("return window.notReloaded === true;")
    assert "Strategies disagree: 2 problems" in browser.find_element(By.ID, "list-status").text
    browser.execute_script("document.getElementById('problem-list').scrollIntoView();")
    shoot(browser, "experiment-filtered.png")

    # j starts the review at the filter's first problem, carrying the filter.
    browser.find_element(By.TAG_NAME, "body").send_keys("j")
    wait_for(browser, lambda d: f"/problems/{pk[3]}/?filter=disagree" in d.current_url)

    has_nav = bool(browser.find_elements(By.ID, "review-nav"))
    if has_nav:
        assert browser.find_element(By.ID, "review-count").text == "1 of 2"
        browser.find_element(By.TAG_NAME, "body").send_keys("j")
        wait_for(browser, lambda d: f"/problems/{pk[4]}/?filter=disagree" in d.current_url)
        assert browser.find_element(By.ID, "review-count").text == "2 of 2"
        browser.find_element(By.TAG_NAME, "body").send_keys("k")
        wait_for(browser, lambda d: f"/problems/{pk[3]}/?filter=disagree" in d.current_url)
        # Typing in a field is typing, not navigating.
        fields = [f for f in browser.find_elements(By.CSS_SELECTOR, "textarea")
                  if f.is_displayed()]
        if fields:
            fields[0].send_keys("j" + Keys.SHIFT)
            assert f"/problems/{pk[3]}/" in browser.current_url

    # A label changes: the figures with labels say "updating" and poll until the
    # recompute has run, then show the majority vote's accuracy with the label.
    from tests.webapp.experiments.review_data import sample, strategies
    from webapp.review.models import HumanLabel
    from webapp.review.services import on_labels_changed
    from workers import tasks

    majority = strategies(experiment)[1]
    HumanLabel.objects.create(team=team, sample=sample(experiment, majority, 2, 0),
                              outcome="pass", reason="0 is right here", author=owner)
    on_labels_changed(experiment.pk)
    browser.get(page)
    assert "Updating" in browser.find_element(By.ID, "labelled-figures").text
    tasks.compute_labelled_metrics(experiment.pk)
    wait_for(browser, lambda d: d.find_elements(By.ID, "labelled-table"))
    assert "Updating" not in browser.find_element(By.ID, "labelled-figures").text
    row = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#labelled-table tr")
           if "majority" in r.text][0]
    assert "0.600" in row and "0.800" in row and "+0.200" in row
    browser.execute_script("document.getElementById('labelled-figures').scrollIntoView();")
    shoot(browser, "labelled-figures.png")

    browser.get(f"{live_server.url}/experiments/compare/?e={experiment.pk}&e={other.pk}")
    assert browser.find_element(By.ID, "compare-table").is_displayed()
    shoot(browser, "compare.png")
    if not has_nav:
        pytest.xfail("the problem page does not include partials/review-nav.html yet")
