"""The team page in headless Chromium: an admin adds a member, changes their role and
removes them, and htmx swaps the member list without reloading the page.

Set ``STRATLAB_SCREENSHOT_DIR`` to keep screenshots of the page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.factories import PASSWORD, make_user
from tests.webapp.experiments import test_new_experiment_browser as chromium
from tests.webapp.experiments.test_new_experiment_browser import BROWSER_MARKS, wait_for
from webapp.teams.services import add_member, role_of

pytestmark = BROWSER_MARKS

browser = chromium.browser  # the same headless Chromium fixture


def members_text(driver: Any) -> str:
    """The member list's text; empty while htmx is swapping it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.ID, "members").text)
    except StaleElementReferenceException:
        return ""


def screenshot(driver: Any, name: str) -> None:
    directory = os.environ.get("STRATLAB_SCREENSHOT_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(directory) / name))


def test_an_admin_manages_members_in_place(browser: Any, live_server: Any, team: Any,
                                           owner: Any, teammate: Any, viewer: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    add_member(team, make_user('<script>alert("x")</script>'), role="viewer")
    nina = make_user("nina")
    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.NAME, "username").send_keys(owner.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "/experiments/" in d.current_url)

    browser.find_element(By.LINK_TEXT, "Teams").click()
    browser.find_element(By.LINK_TEXT, "Alpha").click()
    wait_for(browser, lambda d: d.current_url.endswith("/teams/alpha/"))
    # A marker that a full page load would wipe: htmx swaps must keep it.
    browser.execute_script("window.notReloaded = true;")
    assert '<script>alert("x")</script>' in members_text(browser)

    form = browser.find_element(By.ID, "add-member")
    form.find_element(By.NAME, "username").send_keys("nina")
    Select(form.find_element(By.NAME, "role")).select_by_value("viewer")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "Added nina as viewer." in members_text(d))
    assert role_of(nina, team) == "viewer"
    screenshot(browser, "team-page.png")

    row = browser.find_element(By.ID, f"member-{nina.memberships.get().pk}")
    Select(row.find_element(By.NAME, "role")).select_by_value("member")
    row.find_element(By.XPATH, ".//button[text()='Change role']").click()
    wait_for(browser, lambda d: "nina is now member." in members_text(d))
    assert role_of(nina, team) == "member"

    row = browser.find_element(By.ID, f"member-{teammate.memberships.get().pk}")
    row.find_element(By.XPATH, ".//button[text()='Remove']").click()
    wait_for(browser, lambda d: d.switch_to.alert).accept()  # hx-confirm
    wait_for(browser, lambda d: "Removed." in members_text(d))
    assert role_of(teammate, team) is None

    # A refusal shows inside the swapped list.
    form = browser.find_element(By.ID, "add-member")
    form.find_element(By.NAME, "username").send_keys("ghost")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "There is no user called 'ghost'." in
             members_text(d))
    assert browser.execute_script("return window.notReloaded === true;")
    assert browser.current_url.endswith("/teams/alpha/")
    screenshot(browser, "team-page-refusal.png")


def test_a_viewer_reads_the_team_and_is_told_why_there_is_no_run_button(
    browser: Any, live_server: Any, team: Any, owner: Any, viewer: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.NAME, "username").send_keys(viewer.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: "/experiments/" in d.current_url)

    browser.get(f"{live_server.url}/teams/")
    assert "Viewer" in browser.find_element(By.CSS_SELECTOR, "table.grid").text
    screenshot(browser, "team-list.png")
    browser.find_element(By.LINK_TEXT, "Alpha").click()
    wait_for(browser, lambda d: d.current_url.endswith("/teams/alpha/"))
    assert not browser.find_elements(By.CSS_SELECTOR, "#members form")
    screenshot(browser, "team-page-viewer.png")

    browser.get(f"{live_server.url}/experiments/new/")
    notice = browser.find_element(By.ID, "viewer-notice")
    assert "You are a viewer in every team" in notice.text
    assert not browser.find_elements(By.XPATH, "//button[text()='Run']")
    browser.execute_script("arguments[0].scrollIntoView();", notice)
    screenshot(browser, "new-experiment-viewer.png")
