"""The problem page: one column per pool, candidates grouped by answer with counts, shares
and marks, long outputs collapsed, verdict details, a diff of two candidates; model
output stays inert text everywhere."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from strategies.types import Candidate
from tests.factories import make_experiment
from tests.webapp.review.conftest import finish, login, sampled, store
from webapp.experiments.models import Experiment, Verdict
from webapp.experiments.pools import record_samples

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


class Tags(HTMLParser):
    """Every element and its attributes, as the browser would build them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str) -> None:
    """No element the model wrote: no <img>, no handler or style attribute, no inline
    script, and htmx attributes only on our own controls."""
    for tag, attrs in Tags(html).tags:
        assert tag not in {"img", "b"}, (tag, attrs)
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        if tag == "script":
            assert attrs.get("src") or attrs.get("type") == "application/json", attrs
        for name in ("hx-get", "hx-post"):
            if name in attrs:
                assert (attrs[name] or "").startswith("/experiments/"), (tag, attrs)
                assert "/evil" not in (attrs[name] or "")
        assert attrs.get("hx-trigger") != "load", attrs


def page(client: Client, experiment: Experiment, problem: Any, query: str = "",
         **kwargs: Any) -> str:
    url = reverse("experiment-problem", args=[experiment.pk, problem.pk]) + query
    response = client.get(url, **kwargs)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_it_shows_one_column_per_pool_with_each_strategys_selection(
        client: Client, experiment: Experiment, problem: Any, owner: Any) -> None:
    login(client, owner)
    body = page(client, experiment, problem)
    assert body.count('class="column"') == 2
    assert body.count('class="candidate') == 1 + 4
    assert "Pool A <small>· greedy · 1 candidate" in body
    assert "Pool B <small>· T=0.7 · 4 candidates" in body
    first = sampled(experiment, 0)
    # Both strategies reading pool B selected its first candidate: one candidate, two marks.
    assert body.count(f'(<a href="#candidate-{first.pk}">B#0</a>)') == 2
    article = body[body.index(f'id="candidate-{first.pk}"'):]
    article = article[:article.index("</header>")]
    assert "selected by T=0.7 + majority" in article and "selected by T=0.7 + first" in article
    assert "Reference answer: <strong class=\"reference-answer\">4</strong>" in body


def test_it_groups_candidates_by_answer_with_counts_and_shares(
        client: Client, experiment: Experiment, problem: Any, viewer: Any) -> None:
    login(client, viewer)
    body = page(client, experiment, problem)
    pool_b = body[body.index('id="pool-B"'):]
    histogram = pool_b[pool_b.index('<table class="histogram"'):pool_b.index("</table>")]
    rows = histogram.split("<tr")[2:]
    assert len(rows) == 3
    # 4 and 4.0 vote alike: one cluster of two, first; "no answer" last.
    assert "<code>4</code>" in rows[0] and '<meter min="0" max="4" value="2">50%</meter>' in rows[0]
    assert 'class="is-reference"' in rows[0] and "mark-reference" in rows[0]
    assert "mark-selected" in rows[0]
    assert "<code>5</code>" in rows[1] and 'value="1">25%' in rows[1]
    assert "mark-reference" not in rows[1] and "mark-selected" not in rows[1]
    assert "no answer" in rows[2] and 'value="1">25%' in rows[2]
    assert "2 of 4 · 50% · 2 pass" in pool_b and "1 of 4 · 25% · 0 pass" in pool_b
    assert "Written as <code>4</code>, <code>4.0</code>" in pool_b
    assert "No answer extracted" in pool_b
    # Candidates sit under their cluster.
    four = pool_b[pool_b.index('id="cluster-B-1"'):pool_b.index('id="cluster-B-2"')]
    assert f'id="candidate-{sampled(experiment, 0).pk}"' in four
    assert f'id="candidate-{sampled(experiment, 2).pk}"' in four
    assert f'id="candidate-{sampled(experiment, 1).pk}"' not in four


def test_it_marks_every_tied_answer(client: Client, team: Any, owner: Any) -> None:
    experiment = make_experiment(team, prompts=[("2+2?", "4")], name="Tied")
    problem = experiment.problems.get()
    greedy, majority, _first = experiment.strategies.order_by("position")
    store(greedy.pool_id, problem.pk, ["the answer is 4"])
    store(majority.pool_id, problem.pk, ["the answer is 5", "the answer is 4",
                                         "the answer is 5", "the answer is 4"])
    finish(experiment)
    login(client, owner)
    pool_b = page(client, experiment, problem).split('id="pool-B"')[1]
    assert '<span class="mark mark-tie">tie of 2</span>' in pool_b
    assert pool_b.count('<span class="mark mark-tie">tie for T=0.7 + majority</span>') == 2
    assert pool_b.count('title="tied for T=0.7 + majority">tie</span>') == 2


def test_model_output_stays_inert_in_candidates_clusters_and_the_diff(
        client: Client, experiment: Experiment, problem: Any, teammate: Any) -> None:
    login(client, teammate)
    evil_answer = '<img src=x onerror=alert(9)> hx-get="/evil"'
    Verdict.objects.filter(sample=sampled(experiment, 1)).update(
        answer=evil_answer, detail='AssertionError: <script>alert("d")</script>')
    body = page(client, experiment, problem)
    assert_inert(body)
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;b hx-get=&quot;/evil&quot; " \
           "hx-post=&quot;/evil&quot;&gt;bold&lt;/b&gt;" in body
    assert "&lt;div hx-post=&quot;/experiments/&quot; hx-trigger=&quot;load&quot;&gt;" in body
    assert "&lt;img src=x onerror=alert(9)&gt; hx-get=&quot;/evil&quot;" in body  # its cluster
    assert "AssertionError: &lt;script&gt;alert(&quot;d&quot;)&lt;/script&gt;" in body
    pair = f"{sampled(experiment, 0).pk},{sampled(experiment, 2).pk}"
    diff = page(client, experiment, problem, f"?diff={pair}", **HTMX)
    assert_inert(diff)
    text = diff.replace("<mark>", "").replace("</mark>", "")
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;b hx-get=&quot;/evil&quot;" in text


def test_the_diff_is_a_fragment_for_htmx_and_part_of_the_page_without(
        client: Client, experiment: Experiment, problem: Any, owner: Any) -> None:
    login(client, owner)
    left, right = sampled(experiment, 0), sampled(experiment, 1)
    fragment = page(client, experiment, problem, f"?diff={left.pk},{right.pk}", **HTMX)
    assert "<html" not in fragment
    assert fragment.lstrip().startswith('<section id="diff" class="diff panel">')
    assert "Diff: B#0 ↔ B#1" in fragment
    assert '<tr class="diff-replace">' in fragment
    # Character runs that differ are marked on each side.
    assert "<mark>" in fragment and "answer is <mark>4</mark>" in fragment
    assert "answer is <mark>5</mark>" in fragment
    # Without JavaScript the form sends diff=a&diff=b and gets the whole page.
    full = page(client, experiment, problem, f"?diff={left.pk}&diff={right.pk}")
    assert "<html" in full and "Diff: B#0 ↔ B#1" in full
    assert f'value="{left.pk}" form="diff-form" checked' in full
    assert f'value="{right.pk}" form="diff-form" checked' in full
    # No diff asked: an empty, hidden section that htmx can fill.
    assert '<section id="diff" class="diff panel" hidden>' in page(client, experiment, problem)
    closed = page(client, experiment, problem, "?diff=", **HTMX)
    assert closed.lstrip().startswith('<section id="diff" class="diff panel" hidden>')
    # htmx restoring the URL from history gets the whole page.
    restored = page(client, experiment, problem, f"?diff={left.pk},{right.pk}", **HTMX,
                    HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restored and "Diff: B#0 ↔ B#1" in restored


def test_the_diff_compares_lines_side_by_side(
        client: Client, experiment: Experiment, problem: Any, owner: Any) -> None:
    pool_id = experiment.strategies.get(position=0).pool_id
    record_samples(pool_id, problem.pk, {1: Candidate(
        text="line one\nline two\nline three", prompt_tokens=1, generated_tokens=1,
        logprob_sum=0.0, finish_reason="eos", seconds=0.1)})
    strategy = experiment.strategies.get(position=0)
    strategy.n = 2
    strategy.save(update_fields=["n"])
    login(client, owner)
    a = sampled(experiment, 3)
    b = experiment.strategies.get(position=0).pool.samples.get(problem=problem, index=1)
    fragment = page(client, experiment, problem, f"?diff={a.pk},{b.pk}", **HTMX)
    assert "Diff: B#3 ↔ A#1" in fragment
    assert fragment.count('<tr class="diff-insert">') == 2
    assert '<td class="ln">3</td><td class="side right"><mark>line three</mark></td>' in fragment
    same = page(client, experiment, problem, f"?diff={a.pk},{a.pk}", **HTMX)
    assert "Pick two candidates to compare." in same


def test_the_diff_refuses_candidates_of_other_problems(
        client: Client, team: Any, experiment: Experiment, problem: Any, owner: Any,
        stranger: Any) -> None:
    other = make_experiment(team, prompts=[("Other?", "1")], name="Other")
    other_problem = other.problems.get()
    store(other.strategies.get(position=1).pool_id, other_problem.pk, ["secret text"] * 4)
    foreign = other.strategies.get(position=1).pool.samples.filter(problem=other_problem).first()
    assert foreign is not None
    login(client, owner)
    mine = sampled(experiment, 0)
    body = page(client, experiment, problem, f"?diff={mine.pk},{foreign.pk}", **HTMX)
    assert "Those are not two candidates of this problem." in body
    assert "secret text" not in body
    assert "Pick two candidates" in page(client, experiment, problem, f"?diff={mine.pk}", **HTMX)
    login(client, stranger)
    url = reverse("experiment-problem", args=[experiment.pk, problem.pk])
    assert client.get(url + f"?diff={mine.pk},{mine.pk}", **HTMX).status_code == 404


def test_long_outputs_collapse_and_verdict_details_sit_beside_the_text(
        client: Client, experiment: Experiment, problem: Any, owner: Any) -> None:
    pool_id = experiment.strategies.get(position=0).pool_id
    long_text = "\n".join(f"step {i}: <i>thinking</i>" for i in range(60))
    record_samples(pool_id, problem.pk, {1: Candidate(
        text=long_text, prompt_tokens=1, generated_tokens=300, logprob_sum=0.0,
        finish_reason="length", seconds=0.1)})
    strategy = experiment.strategies.get(position=0)
    strategy.n = 2
    strategy.save(update_fields=["n"])
    Verdict.objects.filter(sample=sampled(experiment, 1)).update(detail="wrong: 5 != 4")
    login(client, owner)
    body = page(client, experiment, problem)
    assert f"Show all 60 lines ({len(long_text)} characters)" in body
    assert '<pre class="preview">step 0: &lt;i&gt;thinking&lt;/i&gt;' in body
    assert "step 59: &lt;i&gt;thinking&lt;/i&gt;</pre></details>" in body
    assert "300 tokens (max new tokens)" in body
    assert "Not verified yet" in body.split('id="pool-A"')[1].split('id="pool-B"')[0]
    candidate = body[body.index(f'id="candidate-{sampled(experiment, 1).pk}"'):]
    assert '<div class="output has-detail">' in candidate[:2000]
    assert '<p class="verdict-detail">wrong: 5 != 4</p>' in candidate[:3000]


def test_a_code_problem_groups_programs_and_keeps_the_matrix(
        client: Client, team: Any, owner: Any) -> None:
    from tests.webapp.experiments.test_code_results import build
    from webapp.experiments import code_verification as cv
    from webapp.experiments.results import compute_results

    experiment = build(team)
    problem = experiment.problems.get()
    [job] = cv.matrix_jobs(experiment, [problem.pk])
    cv.record_matrix(job, [[False, False, True], [True, True, False], [True, True, False], None])
    compute_results(experiment.pk)
    login(client, owner)
    body = page(client, experiment, problem)
    assert body.count('class="column"') == 1  # four strategies, one pool
    assert body.count('class="candidate') == 4
    assert body.count("4 generated tests (columns of the pass matrix)") == 1
    assert "passes 3/4 generated tests" in body and "did not execute" in body
    histogram = body[body.index('<table class="histogram"'):body.index("</table>")]
    rows = histogram.split("<tr")[2:]
    assert "program 1" in rows[0] and 'value="2">50%' in rows[0] and "passes tests" in rows[0]
    assert "selected" in rows[0]
    assert "program 2" in rows[1] and "passes tests" not in rows[1]
    assert "no answer" in rows[2]
