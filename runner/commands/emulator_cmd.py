"""``shotgraph emulator``: run the local fal queue emulator on its own."""

from __future__ import annotations

from pathlib import Path

import click

from runner.errors import ShotgraphError


@click.group()
def emulator() -> None:
    """The local emulator of fal's queue API (renders animatics, costs nothing)."""


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port; 0 picks a free one.",
)
@click.option(
    "--run-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the synchronous host (fal.run); 0 picks a free one.",
)
@click.option(
    "--latency", default=0.5, show_default=True, help="Least seconds a job stays IN_PROGRESS."
)
@click.option(
    "--concurrency", default=2, show_default=True, help="Jobs IN_PROGRESS at once (fal: 2-40)."
)
@click.option(
    "--no-render",
    is_flag=True,
    help="Benchmarking aid: answer every job at once with one tiny stored clip.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep jobs and files here across restarts (default: a temporary directory).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept requests without an Authorization header (fal answers them 401).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Serve https with this certificate (PEM); fal's own client needs https.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The certificate's private key (PEM).",
)
@click.option(
    "--faults",
    "faults_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A JSON or YAML fault plan (see docs/emulator.md).",
)
@click.option(
    "--render-scale",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    show_default=True,
    help="Test aid: draw animatics at this share of their size, then scale up (outputs keep "
    "the requested size).",
)
def serve(
    host: str,
    port: int,
    run_port: int,
    latency: float,
    concurrency: int,
    no_render: bool,
    state_dir: Path | None,
    no_auth: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    faults_file: Path | None,
    render_scale: float,
) -> None:
    """Serve fal's queue API on HOST:PORT until interrupted."""
    # Imported here: the server's libraries (starlette, uvicorn, PyAV) are not loaded by
    # the other commands.
    from runner.emulator.config import EmulatorConfig
    from runner.emulator.faults import FaultPlan, FaultSpecError
    from runner.emulator.server import serve as serve_forever

    try:
        plan = FaultPlan.load(faults_file) if faults_file else FaultPlan()
        config = EmulatorConfig(
            host=host,
            port=port,
            run_port=run_port,
            latency=latency,
            concurrency=concurrency,
            state_dir=state_dir,
            tls_cert=tls_cert,
            tls_key=tls_key,
            faults=plan,
            require_auth=not no_auth,
            render_scale=render_scale,
            no_render=no_render,
        )
    except (FaultSpecError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc

    def ready(url: str, run_url: str) -> None:
        # The first line is for scripts and tests that need the port; keep its shape.
        click.echo(f"fal emulator listening on {url}")
        click.echo(f"  fal.run (synchronous) on {run_url}")
        click.echo(f"  shotgraph: shotgraph run PIPELINE --backend local --emulator-url {url}")
        if tls_cert is not None:
            queue_host, run_host = url.split("://", 1)[1], run_url.split("://", 1)[1]
            click.echo(
                f"  fal-client: FAL_QUEUE_RUN_HOST={queue_host} FAL_RUN_HOST={run_host} "
                "SSL_CERT_FILE=<your CA>"
            )

    try:
        serve_forever(config, on_ready=ready)
    except OSError as exc:
        raise ShotgraphError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another --port, or 0 for a free one",
        ) from None
