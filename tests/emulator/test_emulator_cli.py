"""``shotgraph emulator serve``: options and the errors it reports before serving."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from runner.commands.emulator_cmd import emulator


def test_serve_help_lists_the_options() -> None:
    result = CliRunner().invoke(emulator, ["serve", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--latency",
        "--concurrency",
        "--state-dir",
        "--tls-cert",
        "--tls-key",
        "--faults",
    ):
        assert option in result.output


def test_a_bad_fault_file_is_a_usage_error(tmp_path: Path) -> None:
    spec = tmp_path / "faults.yaml"
    spec.write_text("- {kind: volcano}\n")
    result = CliRunner().invoke(emulator, ["serve", "--faults", str(spec)])
    assert result.exit_code == 2
    assert "unknown fault kind 'volcano'" in result.output


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    result = CliRunner().invoke(emulator, ["serve", "--tls-cert", str(cert)])
    assert result.exit_code == 2
    assert "both a certificate and a key" in result.output
