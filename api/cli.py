"""Flask CLI commands: `flask --app wsgi token --user u1 --role admin` mints a development token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from flask import Flask

from api.auth import mint_token
from core.catalog import Role, values
from runtime import current_runtime


def register_cli(app: Flask) -> None:
    @app.cli.command("token")
    @click.option("--user", "user_id", required=True, help="The user id (the token's sub).")
    @click.option("--role", type=click.Choice(values(Role)), default=Role.USER.value)
    @click.option("--ttl", type=int, default=3600, show_default=True, help="Lifetime in seconds.")
    @click.option(
        "--private-key-file",
        type=click.Path(exists=True, dir_okay=False),
        help="PEM private key, for RS*/ES* deployments.",
    )
    def token(user_id: str, role: str, ttl: int, private_key_file: str | None) -> None:
        """Print a signed bearer token for USER (for development and testing)."""
        settings = current_runtime().settings
        private_key = Path(private_key_file).read_text() if private_key_file else None
        click.echo(mint_token(settings, user_id, Role(role), timedelta(seconds=ttl), private_key))
