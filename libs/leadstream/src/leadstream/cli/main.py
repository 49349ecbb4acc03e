"""Root of the ``leadstream`` command: sub-commands are registered here and nowhere else."""

from __future__ import annotations

import typer

from leadstream.cli.campaigns import campaigns_app
from leadstream.cli.db import migrate
from leadstream.cli.dlq import dlq_app
from leadstream.cli.infra import infra_app, services_app
from leadstream.cli.keys import keys_app
from leadstream.cli.replay import replay
from leadstream.cli.sample import sample_app
from leadstream.cli.schemas import schemas_app
from leadstream.cli.status import status
from leadstream.cli.suppress import suppress_app
from leadstream.cli.topics import topics_app
from leadstream.cli.ui import ui

app = typer.Typer(
    name="leadstream",
    help="LeadStream: operate the lead pipeline and its local stack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(infra_app, name="infra")
app.add_typer(services_app, name="services")
app.add_typer(sample_app, name="sample")
app.command()(migrate)
app.command()(status)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(dlq_app, name="dlq")
app.command()(replay)
app.add_typer(suppress_app, name="suppress")
app.add_typer(keys_app, name="keys")
app.add_typer(campaigns_app, name="campaigns")
app.command()(ui)


def main() -> None:
    """Console-script entrypoint."""
    app()
