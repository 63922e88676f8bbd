"""The whole review flow in headless Chromium, through the page only: filter the problem
list to "strategies disagree" (htmx, the URL follows), step through those problems with
the keyboard, comment, label one candidate "the answer is …" and mark another fail with
the f key, then watch the majority vote's accuracy and sel@k with labels change on the
results page once the recompute task has run; and "more" appends a large group's next
page in place.

With ``STRATLAB_SCREENSHOTS=<folder>`` it saves screenshots of the pages it passes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.factories import PASSWORD
from tests.webapp.experiments.test_new_experiment_browser import (  # noqa: F401 (fixtures)
    BROWSER_MARKS,
    broker,
    browser,
    wait_for,
)
from tests.webapp.review.test_review_browser import text_of

pytestmark = BROWSER_MARKS


def screenshot(driver: Any, name: str, element: str | None = None) -> None:
    """The whole page (or from ``element`` down) as one tall screenshot."""
    folder = os.environ.get("STRATLAB_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    if element:
        driver.execute_script("document.querySelector(arguments[0]).scrollIntoView();",
                              element)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 120, 5000))
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def log_in(driver: Any, base: str, user: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login/")
    driver.find_element(By.NAME, "username").send_keys(user.username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(driver, lambda d: "/login/" not in d.current_url)


def press(driver: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def labelled_row(driver: Any, strategy_pk: int, figure: str) -> list[str]:
    """The cells of one row of the figures with labels: automatic, labelled, change."""
    return list(driver.execute_script(
        "const row = document.querySelector("
        "  `#labelled-table tr[data-strategy='${arguments[0]}'][data-figure='${arguments[1]}']`);"
        "return row ? Array.from(row.querySelectorAll('td.num')).map(c => c.innerText) : [];",
        strategy_pk, figure))


def test_a_reviewer_filters_steps_comments_labels_and_sees_the_vote_change(
        broker: str, browser: Any, live_server: Any, team: Any, owner: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    from tests.webapp.experiments.review_data import build, sample, strategies
    from webapp.experiments.models import Metric
    from webapp.review.models import Comment, HumanLabel
    from workers import tasks

    experiment = build(team, name="Review run")
    greedy, majority, first = strategies(experiment)
    pk = {p.index: p.pk for p in experiment.problems.all()}
    log_in(browser, live_server.url, owner)

    # Filter: htmx swaps the list, the URL follows, the page is not reloaded.
    browser.get(f"{live_server.url}/experiments/{experiment.pk}/")
    browser.execute_script("window.notReloaded = true;")
    browser.find_element(By.CSS_SELECTOR, 'a.filter[data-filter="disagree"]').click()
    wait_for(browser, lambda d: "filter=disagree" in d.current_url)
    wait_for(browser, lambda d: "Strategies disagree: 2 problems" in text_of(d, "#list-status"))
    assert browser.execute_script("return window.notReloaded === true;")

    # j: the filter's first problem, with its place in the queue.
    press(browser, "j")
    wait_for(browser, lambda d: f"/problems/{pk[3]}/?filter=disagree" in d.current_url)
    assert text_of(browser, "#review-count") == "1 of 2"
    browser.execute_script("window.stayedOnPage = true;")

    # A comment on the problem, through htmx.
    browser.find_element(By.ID, "problem-comment").send_keys("Is 1 a misreading of 5?")
    browser.find_element(By.CSS_SELECTOR, "#comments .comment-form button").click()
    wait_for(browser, lambda d: "Is 1 a misreading of 5?" in text_of(d, "#comments .comment-list"))

    # The candidate majority vote chose (B#1, "5"): the reviewer says it answers 1.
    chosen = sample(experiment, majority, 3, 1)
    block = f"#candidate-review-{chosen.pk}"
    browser.find_element(By.CSS_SELECTOR, f"{block} summary").click()
    browser.find_element(By.CSS_SELECTOR, f"{block} input[name=outcome][value=answer]").click()
    browser.find_element(By.ID, f"answer-{chosen.pk}").send_keys("1")
    browser.find_element(By.ID, f"reason-{chosen.pk}").send_keys("It ends with 'so 1'")
    browser.find_element(By.CSS_SELECTOR, f"{block} .label-form button").click()
    wait_for(browser, lambda d: "Human label: answer is 1, wrong" in text_of(d, block))
    # The header's mark beside the extracted answer followed out of band.
    mark = text_of(browser, f"#label-mark-{chosen.pk}")
    assert "human: answer 1" in mark and "fail" in mark
    # The extracted answer stays beside it.
    extracted = browser.find_element(By.CSS_SELECTOR, f"#candidate-{chosen.pk} header > code")
    assert extracted.text == "5"
    assert browser.execute_script("return window.stayedOnPage === true")
    screenshot(browser, "problem-page-labelled", f"#candidate-{chosen.pk}")

    # j: the next problem; click a candidate, f marks it fail, the reason is typed at once.
    press(browser, "j")
    wait_for(browser, lambda d: f"/problems/{pk[4]}/?filter=disagree" in d.current_url)
    assert text_of(browser, "#review-count") == "2 of 2"
    six = sample(experiment, majority, 4, 0)
    browser.find_element(By.CSS_SELECTOR, f"#candidate-{six.pk} pre").click()
    browser.switch_to.active_element.send_keys("f")
    wait_for(browser, lambda d: d.execute_script(
        "return document.activeElement.id === arguments[0];", f"reason-{six.pk}"))
    browser.switch_to.active_element.send_keys("The reference is 6 but it counted wrong")
    browser.find_element(By.CSS_SELECTOR, f"#candidate-review-{six.pk} .label-form button").click()
    wait_for(browser, lambda d: "Human label: Fail" in text_of(d, f"#candidate-review-{six.pk}"))

    # k: back to the previous problem of the filter, where the label and comment stay.
    browser.find_element(By.TAG_NAME, "h1").click()  # focus out of the form
    press(browser, "k")
    wait_for(browser, lambda d: f"/problems/{pk[3]}/?filter=disagree" in d.current_url)
    assert "Is 1 a misreading of 5?" in text_of(browser, "#comments")
    screenshot(browser, "problem-page")
    assert HumanLabel.objects.count() == 2 and Comment.objects.count() == 1

    # The results page says the figures with labels are updating, and polls until the
    # recompute (the task, run here as the cpu worker would) has stored them.
    browser.get(f"{live_server.url}/experiments/{experiment.pk}/")
    assert "Updating" in text_of(browser, "#labelled-figures")
    tasks.compute_labelled_metrics(experiment.pk)
    wait_for(browser, lambda d: labelled_row(d, majority.pk, "selected_accuracy-0"))
    wait_for(browser, lambda d: "Updating" not in text_of(d, "#labelled-figures"))
    automatic, with_labels, change = labelled_row(browser, majority.pk, "selected_accuracy-0")
    # Majority vote: problems 3 and 4 lost (1 0 0 1 1 -> 1 0 0 0 0).
    assert automatic.startswith("0.600") and with_labels.startswith("0.200")
    assert change == "-0.400"
    for k in (1, 2, 4):
        auto, labelled, delta = labelled_row(browser, majority.pk, f"sel_at_k-{k}")
        stored = Metric.objects.get(strategy=majority, name="sel_at_k", k=k, labelled=True)
        assert labelled.startswith(f"{stored.value:.3f}") and delta.startswith("-"), k
    assert "2 labels: 0 fail→pass, 2 pass→fail, 0 agree" in text_of(browser, ".label-changes")
    screenshot(browser, "results-page", "#labelled-figures")
    assert greedy and first  # both keep their rows
    assert labelled_row(browser, first.pk, "selected_accuracy-0")[2] == "-0.200"


def test_more_appends_the_next_page_of_a_large_group(
        broker: str, browser: Any, live_server: Any, team: Any, owner: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    from tests.factories import make_experiment
    from tests.webapp.review.conftest import finish, store
    from webapp.experiments.specs import StrategySpec

    # 42 right answers, 3 fives, and 60 answers given once: more groups than one screen.
    experiment = make_experiment(
        team, prompts=[("What is 2+2?", "4")], n=105, name="Large pool",
        strategies=[StrategySpec(temperature=0.7, selector="majority")])
    store(experiment.strategies.get().pool_id, experiment.problems.get().pk,
          [f"Step {i}. The answer is 4" for i in range(42)] + ["The answer is 5"] * 3
          + [f"The answer is {i}" for i in range(100, 160)])
    finish(experiment)
    log_in(browser, live_server.url, owner)
    url = f"{live_server.url}/experiments/{experiment.pk}/problems/{experiment.problems.get().pk}/"
    browser.get(url)
    browser.execute_script("window.stayedOnPage = true;")

    def count() -> int:
        return int(browser.execute_script(
            "return document.querySelectorAll('#cluster-A-1 article.candidate').length;"))

    assert count() == 20
    more = browser.find_element(By.ID, "more-A-1")
    assert more.text.startswith("Show 20 more")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", more)
    more.click()
    wait_for(browser, lambda d: count() == 40)
    browser.find_element(By.ID, "more-A-1").click()
    wait_for(browser, lambda d: count() == 42)
    assert not browser.find_elements(By.ID, "more-A-1")
    assert browser.current_url == url
    assert browser.execute_script("return window.stayedOnPage === true")
    # An appended candidate is labelled like any other.
    last = browser.find_elements(By.CSS_SELECTOR, "#cluster-A-1 article.candidate")[-1]
    pk = last.get_attribute("id").removeprefix("candidate-")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", last)
    last.find_element(By.CSS_SELECTOR, "summary").click()
    last.find_element(By.CSS_SELECTOR, "input[name=outcome][value=fail]").click()
    browser.find_element(By.ID, f"reason-{pk}").send_keys("Step 41 is wrong")
    last.find_element(By.CSS_SELECTOR, ".label-form button").click()
    wait_for(browser, lambda d: "Human label: Fail" in text_of(d, f"#candidate-review-{pk}"))
    # The groups past the first screen show a link in place of their candidates.
    links = browser.find_elements(By.CSS_SELECTOR, "a.more-candidates")
    assert len(links) == 62 - 39 and all(a.text == "Show the candidate" for a in links)
    last = links[-1]
    group = last.get_attribute("id").removeprefix("more-A-")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", last)
    last.click()
    wait_for(browser, lambda d: d.find_elements(
        By.CSS_SELECTOR, f"#cluster-A-{group} article.candidate"))
    assert "The answer is 159" in text_of(browser, f"#cluster-A-{group}")
    assert browser.execute_script("return window.stayedOnPage === true")
    screenshot(browser, "problem-page-large-pool")
