"""The problem page in headless Chromium: comment on a candidate and label it through
htmx (the fragment updates in place, the page is not reloaded), comment on the problem,
pick two candidates and see their diff.

With ``STRATLAB_SCREENSHOTS=<folder>`` the test also saves screenshots of the page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.factories import PASSWORD
from tests.webapp.experiments.test_new_experiment_browser import (  # noqa: F401 (fixture)
    BROWSER_MARKS,
    broker,
    browser,
    wait_for,
)
from tests.webapp.review.conftest import sampled
from webapp.review.models import Comment, HumanLabel, LabelChange

pytestmark = BROWSER_MARKS


def text_of(driver: Any, selector: str) -> str:
    """The element's text, read in one step (htmx may swap it between two)."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
        selector))


def screenshot(driver: Any, name: str) -> None:
    folder = os.environ.get("STRATLAB_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 120, 6000))
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def test_it_comments_labels_and_diffs_through_htmx(
        broker: str, browser: Any, live_server: Any,  # noqa: F811
        experiment: Any, problem: Any, teammate: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.NAME, "username").send_keys(teammate.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(browser, lambda d: "/experiments/" in d.current_url)
    browser.get(f"{live_server.url}/experiments/{experiment.pk}/problems/{problem.pk}/")
    # A marker that a full page load would lose.
    browser.execute_script("window.stayedOnPage = true;")
    screenshot(browser, "1-problem-page")

    candidate = sampled(experiment, 1)
    block = f"#candidate-review-{candidate.pk}"
    browser.find_element(By.CSS_SELECTOR, f"{block} summary").click()
    browser.find_element(By.ID, f"comment-{candidate.pk}").send_keys("Why 5? <b>look</b>")
    browser.find_element(By.CSS_SELECTOR, f"{block} .comment-form button").click()
    wait_for(browser, lambda d: "Why 5? <b>look</b>" in text_of(d, f"{block} .comment-list"))
    # The problem's comment section learnt of it out of band.
    wait_for(browser, lambda d: "B#1 (1)" in text_of(d, "#comments"))

    browser.find_element(By.CSS_SELECTOR, f"{block} input[name=outcome][value=pass]").click()
    browser.find_element(By.ID, f"answer-{candidate.pk}").send_keys("5")
    browser.find_element(By.ID, f"reason-{candidate.pk}").send_keys("The prompt was 2+3")
    browser.find_element(By.CSS_SELECTOR, f"{block} .label-form button").click()
    wait_for(browser, lambda d: "Human label: Pass, answer is 5" in text_of(d, block))
    text = text_of(browser, block)
    assert "Automatic: Fail" in text and "Label saved." in text
    assert "1 label change" in text and "The prompt was 2+3" in text
    assert browser.execute_script("return window.stayedOnPage === true")
    assert HumanLabel.objects.get().outcome == "pass" and LabelChange.objects.count() == 1
    assert Comment.objects.get().sample_id == candidate.pk

    # From a filtered list the review keys work here: click a candidate, press f, give
    # the reason.
    browser.get(f"{live_server.url}/experiments/{experiment.pk}/problems/{problem.pk}/"
                "?filter=all")
    browser.execute_script("window.stayedOnPage = true;")
    other = sampled(experiment, 3)
    browser.find_element(By.CSS_SELECTOR, f"#candidate-{other.pk} pre").click()
    assert browser.switch_to.active_element.get_attribute("id") == f"candidate-{other.pk}"
    browser.switch_to.active_element.send_keys("f")
    other_block = f"#candidate-review-{other.pk}"
    wait_for(browser, lambda d: d.execute_script(
        "return document.activeElement.id === arguments[0];", f"reason-{other.pk}"))
    assert browser.find_element(
        By.CSS_SELECTOR, f"{other_block} input[data-key=fail]").is_selected()
    browser.switch_to.active_element.send_keys("No answer at all")
    browser.find_element(By.CSS_SELECTOR, f"{other_block} .label-form button").click()
    wait_for(browser, lambda d: "Human label: Fail" in text_of(d, other_block))
    assert browser.execute_script("return window.stayedOnPage === true")
    assert HumanLabel.objects.get(sample=other).reason == "No answer at all"

    browser.find_element(By.ID, "problem-comment").send_keys("Reference answer looks wrong")
    browser.find_element(By.CSS_SELECTOR, "#comments .comment-form button").click()
    wait_for(browser, lambda d: "Reference answer looks wrong" in text_of(
        d, "#comments .comment-list"))

    # Three ticks keep the newest two; the diff arrives in place and the URL says which.
    for index in (3, 0, 2):
        box = browser.find_element(
            By.CSS_SELECTOR, f'input[name=diff][value="{sampled(experiment, index).pk}"]')
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.click()
    ticked = browser.find_elements(By.CSS_SELECTOR, "input[name=diff]:checked")
    assert sorted(int(b.get_attribute("value")) for b in ticked) == sorted(
        [sampled(experiment, 0).pk, sampled(experiment, 2).pk])
    browser.find_element(By.CSS_SELECTOR, "#diff-form button").click()
    wait_for(browser, lambda d: d.execute_script(
        "const e = document.getElementById('diff');"
        "return e !== null && !e.hidden && e.textContent.includes('Diff:');"))
    diff = text_of(browser, "#diff")
    assert "Diff: B#0 ↔ B#2" in diff and "<img src=x onerror=alert(1)>" in diff
    assert "diff=" in browser.current_url
    assert browser.execute_script("return window.stayedOnPage === true")
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main b")
    screenshot(browser, "2-reviewed")
