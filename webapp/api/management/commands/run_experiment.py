"""``manage.py run_experiment spec.json --team T [--user U] [--wait]``: submit an
experiment spec (the API's JSON, checked by ``experiments.spec_json``) headlessly.

With ``--wait`` it shows a progress bar per stage (redrawn in place on a terminal, a
line per change otherwise), then the summary table, and exits 1 when the experiment
failed or was cancelled (2 for a spec that does not validate).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import Http404

from webapp.experiments import queries, services, spec_json
from webapp.experiments.models import Experiment
from webapp.teams.models import Membership, Team
from webapp.teams.services import require_role

BAR_WIDTH = 20


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """>>> bar(1, 4, 8)
    '[##------]'
    """
    filled = width if total == 0 else min(width, width * done // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_line(stages: list[dict[str, Any]]) -> str:
    """The stages on one line, e.g. ``generate [####----] 12/24  verify [...] 0/24 ...``."""
    return "  ".join(f"{stage['key']} {bar(int(stage['done']), int(stage['total']))} "
                     f"{stage['done']}/{stage['total']}" for stage in stages)


def _figure(figure: Any) -> str:
    if figure is None or figure.value is None:
        return "-"
    text = f"{figure.value:.3f}"
    if figure.low is not None and figure.high is not None:
        text += f" [{figure.low:.3f}, {figure.high:.3f}]"
    return text


def summary_table(experiment: Experiment) -> str:
    """One row per strategy: its accuracy with the 95% interval, pass@1 and pass@k and
    sel@k at the largest k it reaches, the oracle gap and the mean generated tokens."""
    rows = queries.summary_rows(experiment)
    header = ["strategy", "n", "accuracy [95% CI]", "pass@1", "pass@k", "sel@k", "oracle gap",
              "tokens"]
    table = [header]
    for row in rows:
        strategy = row["strategy"]
        reached = [(k, p, sel) for k, p, sel in zip(
            experiment.k_values, row["pass_at_k"], row["sel_at_k"], strict=True)
            if p is not None]
        last_k, last_pass, last_sel = reached[-1] if reached else (0, None, None)
        first = row["pass_at_k"][0] if row["pass_at_k"] else None
        table.append([
            strategy.label, str(strategy.n), _figure(row["accuracy"]), _figure(first),
            f"@{last_k} {_figure(last_pass)}" if last_k else "-",
            f"@{last_k} {_figure(last_sel)}" if last_k else "-",
            _figure(row["oracle_gap"]), _figure(row["mean_tokens"]),
        ])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
             for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


class Command(BaseCommand):
    help = "Submit an experiment spec (JSON) for a team; --wait follows it to the end."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("spec", help="The spec file (JSON), or - for standard input.")
        parser.add_argument("--team", help="The team's slug (else the spec's \"team\").")
        parser.add_argument("--user", help="Submit as this user (default: the team's owner); "
                                           "needs a member's role.")
        parser.add_argument("--wait", action="store_true",
                            help="Show progress until the experiment ends, then its summary.")
        parser.add_argument("--poll", type=float, default=2.0,
                            help="Seconds between progress updates (default 2).")

    def handle(self, *args: Any, **options: Any) -> None:
        spec = self._load(options["spec"])
        team = self._team(options["team"] or spec.get("team"))
        user = self._user(options["user"], team)
        try:
            parsed = spec_json.parse_spec(spec, team=team)
            experiment = services.submit_experiment(team, user, parsed)
        except spec_json.SpecError as exc:
            for path, messages in exc.errors.items():
                for message in messages:
                    self.stderr.write(f"{path}: {message}")
            raise CommandError("The spec is not valid.", returncode=2) from None
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(f"Experiment {experiment.pk} ({experiment.name}) queued: "
                          f"/experiments/{experiment.pk}/")
        if options["wait"]:
            self._follow(experiment.pk, options["poll"])

    def _load(self, name: str) -> dict[str, Any]:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror}.") from None
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{name} line {exc.lineno}: not JSON ({exc.msg}).") from None
        if not isinstance(spec, dict):
            raise CommandError(f"{name}: expected a JSON object.")
        return spec

    def _team(self, slug: object) -> Team:
        if not slug:
            raise CommandError("Name the team: --team SLUG (or \"team\" in the spec).")
        team = Team.objects.filter(slug=str(slug)).first()
        if team is None:
            raise CommandError(f"There is no team {slug!r}.")
        return team

    def _user(self, username: str | None, team: Team) -> Any:
        if username is None:
            membership = team.memberships.filter(role=Membership.Role.OWNER).first()
            if membership is None:
                raise CommandError(f"{team} has no owner; pass --user.")
            return membership.user
        model = get_user_model()
        user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        try:
            require_role(user, team, Membership.Role.MEMBER)
        except (Http404, PermissionDenied):
            raise CommandError(f"{username} may not run experiments in {team} (needs a "
                               "member's role).") from None
        return user

    def _follow(self, experiment_id: int, poll: float) -> None:
        is_tty = self.stdout.isatty()
        last = ""
        try:
            while True:
                experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
                line = f"{experiment.status:<9} {progress_line(services.progress(experiment))}"
                if line != last:
                    if is_tty:
                        self.stdout.write("\r\x1b[2K" + line, ending="")
                        self.stdout.flush()
                    else:
                        self.stdout.write(line)
                    last = line
                if experiment.is_done:
                    break
                time.sleep(poll)
        except KeyboardInterrupt:
            raise CommandError(f"Stopped waiting; experiment {experiment_id} goes on.",
                               returncode=130) from None
        if is_tty:
            self.stdout.write("")
        self._finish(experiment)

    def _finish(self, experiment: Experiment) -> None:
        if experiment.status == Experiment.Status.FINISHED:
            self.stdout.write(summary_table(experiment))
            return
        reason = f": {experiment.error}" if experiment.error else ""
        raise CommandError(f"Experiment {experiment.pk} {experiment.status}{reason}",
                           returncode=1)
