"""Who may submit an experiment: members, admins and the owner; a viewer's POST is 403
(checked in the view, whatever the page shows) and a viewer in every team sees a notice
in place of the Run button."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_team
from tests.webapp.experiments.test_new_experiment import form_data
from webapp.experiments.models import Experiment
from webapp.teams.services import add_member

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("persona", ["owner", "team_admin", "teammate"])
def test_members_and_up_submit_an_experiment(request, client, team, persona) -> None:  # type: ignore[no-untyped-def]
    client.force_login(request.getfixturevalue(persona))
    page = client.get(reverse("experiment-new")).content.decode()
    assert '<button type="submit">Run</button>' in page and 'id="viewer-notice"' not in page
    response = client.post(reverse("experiment-new"), form_data(team))
    assert response.status_code == 302
    assert Experiment.objects.get().created_by == request.getfixturevalue(persona)


def test_a_viewers_submit_is_403_and_stores_nothing(client, team, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    assert client.post(reverse("experiment-new"), form_data(team)).status_code == 403
    # Refused before the form is read: an invalid or teamless post is 403 too.
    assert client.post(reverse("experiment-new"), form_data(team, n_samples="x")).status_code == 403
    assert client.post(reverse("experiment-new"), {}).status_code == 403
    assert Experiment.objects.count() == 0


def test_a_viewer_in_every_team_sees_a_notice_instead_of_the_run_button(  # type: ignore[no-untyped-def]
    client, team, viewer
) -> None:
    client.force_login(viewer)
    response = client.get(reverse("experiment-new"))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="viewer-notice"' in body and "You are a viewer in every team" in body
    assert '<button type="submit">Run</button>' not in body


def test_a_viewer_here_and_member_there_submits_only_there(client, team, viewer) -> None:  # type: ignore[no-untyped-def]
    beta = make_team("Beta")
    add_member(beta, viewer, role="member")
    client.force_login(viewer)
    form = client.get(reverse("experiment-new")).context["form"]
    assert [t.name for t in form.fields["team"].queryset] == ["Beta"]
    assert client.post(reverse("experiment-new"), form_data(team)).status_code == 403
    assert client.post(reverse("experiment-new"), form_data(beta)).status_code == 302
    assert list(Experiment.objects.values_list("team__name", flat=True)) == ["Beta"]


def test_another_teams_user_cannot_submit_into_the_team(client, team, stranger) -> None:  # type: ignore[no-untyped-def]
    client.force_login(stranger)
    # A team they are not in does not exist for them, whatever else the form says; so
    # does a team that does not exist at all.
    assert client.post(reverse("experiment-new"), form_data(team)).status_code == 404
    assert client.post(reverse("experiment-new"),
                       form_data(team, n_samples="x")).status_code == 404
    assert client.post(reverse("experiment-new"),
                       form_data(team, team=team.pk + 1000)).status_code == 404
    assert client.post(reverse("experiment-new"), form_data(team, team="x")).status_code == 404
    assert Experiment.objects.count() == 0


def test_a_viewer_choosing_a_foreign_team_gets_404_not_403(client, team, viewer, stranger) -> None:  # type: ignore[no-untyped-def]
    foreign = stranger.memberships.get().team
    client.force_login(viewer)
    response = client.post(reverse("experiment-new"), form_data(team, team=foreign.pk))
    assert response.status_code == 404
    assert Experiment.objects.count() == 0


def test_anonymous_users_are_sent_to_log_in(client, team) -> None:  # type: ignore[no-untyped-def]
    for method in ("get", "post"):
        response = getattr(client, method)(reverse("experiment-new"))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert Experiment.objects.count() == 0
