"""``manage.py create_team NAME --user USERNAME``: a login and a team for a new
installation.

Creates the user if there is none of that name (its password from an environment
variable or typed at a prompt, never from the command line, where ``ps`` and shell
history would show it) and the team with that user as its owner. Running it again with
the same arguments changes nothing: an existing user keeps their password, and an
existing team is accepted when the user already owns it.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify

from webapp.teams.models import Membership, Team
from webapp.teams.services import ensure_team, role_of


class Command(BaseCommand):
    help = "Create a user (if missing) and a team owned by that user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The team's name, e.g. 'Reasoning'.")
        parser.add_argument("--user", required=True, metavar="USERNAME",
                            help="The owner; created if there is no such user.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-from-env", metavar="VAR",
                            help="Read a new user's password from this environment variable.")
        source.add_argument("--password-prompt", action="store_true",
                            help="Ask for a new user's password (twice).")

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"].strip()
        username: str = options["user"].strip()
        if not name or not slugify(name):
            raise CommandError("Give the team a name with at least one letter or digit.")
        if not username:
            raise CommandError("Give a username with --user.")
        user_model = get_user_model()
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
        team = Team.objects.filter(slug=slugify(name)).first()
        if team is not None and (user is None or role_of(user, team) != Membership.Role.OWNER):
            owners = ", ".join(
                team.memberships.filter(role=Membership.Role.OWNER)
                .values_list("user__username", flat=True)
            ) or "nobody"
            raise CommandError(
                f"A team {team.name!r} (slug {team.slug}) already exists, owned by {owners}; "
                f"its admins can add {username} on its Teams page."
            )
        password = None if user is not None else self._password(options, username)
        with transaction.atomic():
            if user is None:
                user = user_model.objects.create_user(username, password=password)
                self.stdout.write(f"Created user {username}.")
            else:
                self.stdout.write(f"User {username} exists; password unchanged.")
            if team is None:
                team = ensure_team(name, owner=user)
                self.stdout.write(f"Created team {team.name} (/teams/{team.slug}/) "
                                  f"owned by {username}.")
            else:
                self.stdout.write(f"Team {team.name} exists and {username} owns it.")

    def _password(self, options: dict[str, Any], username: str) -> str:
        """The new user's password from the chosen source, checked by the installation's
        password validators."""
        if options["password_from_env"]:
            var = options["password_from_env"]
            password = os.environ.get(var, "")
            if not password:
                raise CommandError(f"The environment variable {var} is unset or empty.")
        elif options["password_prompt"]:
            password = getpass.getpass(f"Password for {username}: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords differ.")
        else:
            raise CommandError(
                f"There is no user {username}: give the new user a password with "
                "--password-from-env VAR or --password-prompt."
            )
        try:
            validate_password(password, user=get_user_model()(username=username))
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        return password
