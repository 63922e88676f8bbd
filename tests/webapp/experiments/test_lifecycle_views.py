"""The experiment page's lifecycle actions through the test client: cancel, delete, amend
and run again with changes. Members and up may (POST with CSRF), a viewer gets 403,
another team's user 404, an anonymous user the login page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_experiment
from tests.webapp.experiments.test_lifecycle import run_without_model
from webapp.datasets.services import ensure_arithmetic_dataset
from webapp.experiments.models import Experiment, Strategy
from webapp.experiments.services import submit_experiment
from webapp.experiments.specs import ExperimentSpec, StrategySpec

pytestmark = pytest.mark.django_db

MEMBERS = ["owner", "team_admin", "teammate"]


@pytest.fixture
def experiment(team: Any) -> Experiment:
    return make_experiment(team, n=2)


@pytest.fixture
def finished(team: Any) -> Experiment:
    done = make_experiment(team, n=2, name="done")
    run_without_model(done)
    return done


def _urls(pk: int) -> dict[str, str]:
    return {name: reverse(f"experiment-{name}", args=[pk])
            for name in ("cancel", "delete", "amend")}


# --- Who may ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", MEMBERS)
def test_members_and_up_cancel_a_running_experiment(
    request: Any, client: Client, experiment: Experiment, persona: str
) -> None:
    client.force_login(request.getfixturevalue(persona))
    response = client.post(_urls(experiment.pk)["cancel"])
    assert response.status_code == 302
    assert response["Location"] == reverse("experiment-detail", args=[experiment.pk])
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED


def test_a_viewer_gets_403_on_every_action_and_changes_nothing(
    client: Client, finished: Experiment, viewer: Any
) -> None:
    client.force_login(viewer)
    urls = _urls(finished.pk)
    assert client.post(urls["cancel"]).status_code == 403
    assert client.post(urls["delete"], {"confirm": "yes"}).status_code == 403
    assert client.get(urls["amend"]).status_code == 403
    assert client.post(urls["amend"], {"n_samples": "4"}).status_code == 403
    finished.refresh_from_db()
    assert finished.status == Experiment.Status.FINISHED and finished.n_samples == 2
    # The page reads fine, without the buttons.
    page = client.get(reverse("experiment-detail", args=[finished.pk])).content.decode()
    for button in ('id="run-again"', 'id="delete-experiment"', 'id="amend-experiment"'):
        assert button not in page


def test_another_teams_user_gets_404_and_changes_nothing(
    client: Client, experiment: Experiment, stranger: Any
) -> None:
    client.force_login(stranger)
    urls = _urls(experiment.pk)
    assert client.post(urls["cancel"]).status_code == 404
    assert client.post(urls["delete"], {"confirm": "yes"}).status_code == 404
    assert client.get(urls["amend"]).status_code == 404
    assert client.get(reverse("experiment-new") + f"?from={experiment.pk}").status_code == 404
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.QUEUED


def test_anonymous_users_are_sent_to_log_in(client: Client, experiment: Experiment) -> None:
    for url in _urls(experiment.pk).values():
        response = client.post(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Experiment.objects.filter(pk=experiment.pk, status="queued").exists()


def test_cancel_and_delete_take_posts_only(
    client: Client, experiment: Experiment, owner: Any
) -> None:
    client.force_login(owner)
    assert client.get(_urls(experiment.pk)["cancel"]).status_code == 405
    assert client.get(_urls(experiment.pk)["delete"]).status_code == 405


def test_the_buttons_post_with_the_pages_csrf_token(
    experiment: Experiment, owner: Any
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    url = _urls(experiment.pk)["cancel"]
    assert client.post(url).status_code == 403  # no token: refused
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.QUEUED
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    form = re.search(rf'<form method="post" action="{url}"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None and 'id="cancel-experiment"' in form.group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(1))
    assert token is not None
    assert client.post(url, {"csrfmiddlewaretoken": token.group(1)}).status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED


# --- Cancel and delete ----------------------------------------------------------------


def test_a_cancelled_experiment_shows_as_cancelled_and_stops_polling(
    client: Client, experiment: Experiment, owner: Any
) -> None:
    client.force_login(owner)
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    assert 'id="cancel-experiment"' in page and 'hx-trigger="every 2s"' in page
    client.post(_urls(experiment.pk)["cancel"])
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    assert 'class="status status-cancelled">Cancelled<' in page
    assert 'id="cancelled-notice"' in page and 'id="cancel-experiment"' not in page
    assert "hx-trigger" not in page.split('id="live"')[1].split(">")[0]
    assert 'id="progress"' in page  # where it stopped
    fragment = client.get(reverse("experiment-detail", args=[experiment.pk]),
                          HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="live"') and "hx-trigger" not in fragment
    listing = client.get(reverse("experiment-list")).content.decode()
    assert '<span class="status status-cancelled">Cancelled</span>' in listing
    # Cancelling a cancelled experiment changes nothing.
    assert client.post(_urls(experiment.pk)["cancel"]).status_code == 302


def test_delete_asks_for_confirmation_then_deletes(
    client: Client, finished: Experiment, teammate: Any
) -> None:
    client.force_login(teammate)
    url = _urls(finished.pk)["delete"]
    response = client.post(url)
    assert response.status_code == 400
    assert 'name="confirm" value="yes"' in response.content.decode()
    assert Experiment.objects.filter(pk=finished.pk).exists()
    response = client.post(url, {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == reverse("experiment-list")
    assert not Experiment.objects.filter(pk=finished.pk).exists()
    assert client.get(reverse("experiment-detail", args=[finished.pk])).status_code == 404


# --- Amend ----------------------------------------------------------------------------


def test_the_amend_page_grows_n_and_adds_a_strategy(
    client: Client, finished: Experiment, teammate: Any
) -> None:
    client.force_login(teammate)
    detail = client.get(reverse("experiment-detail", args=[finished.pk])).content.decode()
    assert f'href="{_urls(finished.pk)["amend"]}" id="amend-experiment"' in detail
    page = client.get(_urls(finished.pk)["amend"]).content.decode()
    assert 'name="n_samples"' in page and 'value="2"' in page and 'id="current-strategies"' in page
    response = client.post(_urls(finished.pk)["amend"], {
        "n_samples": "4", "rows": ["x1"], "s-x1-temperature": "0.7", "s-x1-top_p": "1",
        "s-x1-top_k": "0", "s-x1-selector": "mbr",
    })
    assert response.status_code == 302, response.content.decode()[-1500:]
    finished.refresh_from_db()
    assert finished.status == Experiment.Status.QUEUED and finished.n_samples == 4
    assert [s.selector for s in finished.strategies.order_by("position")] == [
        "first", "majority", "first", "mbr"]


def test_the_amend_page_grows_n_to_10000(
    client: Client, finished: Experiment, owner: Any
) -> None:
    client.force_login(owner)
    assert 'max="10000"' in client.get(_urls(finished.pk)["amend"]).content.decode()
    response = client.post(_urls(finished.pk)["amend"], {"n_samples": "10000"})
    assert response.status_code == 302, response.content.decode()[-1500:]
    finished.refresh_from_db()
    assert finished.n_samples == 10_000 and finished.k_values[-1] == 8192
    assert [s.n for s in finished.strategies.order_by("position")] == [1, 10_000, 10_000]


def test_the_amend_page_explains_what_it_cannot_do(
    client: Client, finished: Experiment, experiment: Experiment, owner: Any
) -> None:
    client.force_login(owner)
    response = client.post(_urls(finished.pk)["amend"], {"n_samples": "1"})
    assert response.status_code == 400
    assert "N can only grow: the experiment has N = 2." in response.content.decode()
    response = client.post(_urls(finished.pk)["amend"], {"n_samples": "2"})
    assert response.status_code == 400
    assert "Nothing to change" in response.content.decode()
    response = client.post(_urls(finished.pk)["amend"], {"n_samples": "10001"})
    assert response.status_code == 400
    assert "Samples per problem (N) can be at most 10,000." in response.content.decode()
    response = client.post(_urls(experiment.pk)["amend"], {"n_samples": "4"})
    assert response.status_code == 400
    assert "Only a finished experiment can be amended; this one is queued." in (
        response.content.decode())
    # A strategy row with a bad value comes back with its error, in its row.
    response = client.post(_urls(finished.pk)["amend"], {
        "n_samples": "2", "rows": ["r9"], "s-r9-temperature": "-1", "s-r9-top_p": "1",
        "s-r9-top_k": "0", "s-r9-selector": "majority",
    })
    body = response.content.decode()
    assert response.status_code == 400
    row = body.partition('id="strategy-row-r9"')[2].partition("</fieldset>")[0]
    assert "Temperature: temperature must be &gt;= 0" in row
    finished.refresh_from_db()
    assert finished.n_samples == 2 and finished.status == Experiment.Status.FINISHED


# --- Run again with changes -----------------------------------------------------------


class FormValues(HTMLParser):
    """What a browser submits for a page's form: inputs, checked boxes, selected options
    (else the first) and textareas."""

    def __init__(self, form_id: str | None = None) -> None:
        super().__init__()
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name and a.get("type") != "submit":
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.values.append((name, a.get("value", "on")))
            elif a.get("type") != "file":
                self.values.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]]
            self.values += [(self._select, v) for v in chosen]
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values.append((self._textarea, self._text.strip("\n")))
            self._textarea = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.values:
            if name in out:
                out[name] = [*([out[name]] if isinstance(out[name], str) else out[name]),
                             value]
            else:
                out[name] = value
        return out


ROWS = [
    StrategySpec(temperature=0.0, selector="first"),
    StrategySpec(temperature=0.8, top_p=0.9, sampling={"min_p": 0.05,
                 "temperature_mix": [0.5, 1.2]}, selector="mbr",
                 selector_config={"similarity": "rouge_l"}),
    StrategySpec(temperature=1.0, selector="majority", decoder="beam_search",
                 decoder_config={"num_beams": 6, "early_stopping": "never"}),
    StrategySpec(temperature=0.7, selector="majority", decoder="adaptive_consistency",
                 decoder_config={"threshold": 0.9, "max_samples": 3}),
    StrategySpec(temperature=0.7, selector="majority", prompt_scheme="few_shot",
                 prompt_config={"k": 2}),
]


def test_run_again_prefills_the_form_and_unchanged_rows_reuse_their_pools(
    client: Client, team: Any, owner: Any
) -> None:
    source = submit_experiment(team, owner, ExperimentSpec(
        name="Sweep", model_name="smollm2-135m-instruct",
        dataset=ensure_arithmetic_dataset(team, size=5, seed=2), n_samples=4,
        max_new_tokens=12, seed=7, strategies=ROWS, subset={"mode": "first", "k": 3},
    ))
    client.force_login(owner)
    detail = client.get(reverse("experiment-detail", args=[source.pk])).content.decode()
    url = reverse("experiment-new") + f"?from={source.pk}"
    assert f'href="{url}"' in detail
    page = client.get(url)
    assert page.status_code == 200
    parser = FormValues()
    parser.feed(page.content.decode())
    data = parser.data()
    assert data["name"] == "Sweep (again)" and data["dataset_source"] == "saved"
    assert data["dataset"] == str(source.dataset_id) and data["subset_mode"] == "first"
    assert len(data["rows"]) == len(ROWS)

    # Submitted as it is (what the browser sends), it is the same experiment again.
    response = client.post(reverse("experiment-new"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    again = Experiment.objects.exclude(pk=source.pk).get()
    fields = ("model_name", "dataset_id", "n_samples", "max_new_tokens", "seed", "subset",
              "verifier", "verifier_config", "self_eval", "k_values")
    assert {f: getattr(again, f) for f in fields} == {f: getattr(source, f) for f in fields}
    columns = ("pool_id", "test_pool_id", "n", "label", "selector", "selector_config",
               "prompt_scheme", "prompt_config", "sampling", "temperature")

    def rows(e: Experiment) -> list[tuple[Any, ...]]:
        return list(Strategy.objects.filter(experiment=e).order_by("position")
                    .values_list(*columns))

    assert rows(again) == rows(source)

    # A changed row gets its own pool; the others keep theirs.
    data["name"] = "Sweep, hotter"
    row = data["rows"][1]
    data[f"s-{row}-temperature"] = "1.1"
    assert client.post(reverse("experiment-new"), data).status_code == 302
    hotter = Experiment.objects.get(name="Sweep, hotter")
    changed = [a[0] != b[0] for a, b in zip(rows(hotter), rows(source), strict=True)]
    assert changed == [False, True, False, False, False]


def test_a_viewer_may_open_the_prefilled_form_but_not_run_it(
    client: Client, experiment: Experiment, viewer: Any
) -> None:
    client.force_login(viewer)
    page = client.get(reverse("experiment-new") + f"?from={experiment.pk}")
    assert page.status_code == 200 and 'id="viewer-notice"' in page.content.decode()
    assert client.get(reverse("experiment-new") + "?from=nope").status_code == 404
