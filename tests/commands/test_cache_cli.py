"""``shotgraph cache info | verify | gc`` and the lockfile reader behind gc."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runner import cli
from runner.commands.lockfiles import find_lockfiles, lock_keys
from runner.errors import ShotgraphError
from runner.store import Owner, Store, StoredFile
from tests.record_helpers import record

OLD = time.time() - 86_400


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "pipelines").mkdir()
    monkeypatch.delenv("SHOTGRAPH_CACHE_DIR", raising=False)
    monkeypatch.chdir(root / "pipelines")
    return root


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def add_result(store: Store, key: str, content: bytes, *, at: float = OLD) -> StoredFile:
    src = store.tmp_dir() / f"{key}.src"
    src.write_bytes(content)
    output = store.put_file(src, move=True)
    os.utime(store.file_path(output.sha256), (at, at))
    store.put_result(record(key, output, node=key, cost_usd=0.01, recorded_at=at))
    return output


def write_lock(path: Path, keys: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nodes = {name: {"key": key, "endpoint": "fal-ai/ltx-video"} for name, key in keys.items()}
    path.write_text(json.dumps({"version": 1, "nodes": nodes}))
    return path


def test_info_defaults_to_the_project_store(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(project / ".shotgraph") as store:
        add_result(store, "a", b"x" * 2_000_000)
    code, out, _ = run(["cache", "info"], capsys)
    assert code == 0
    assert str(project / ".shotgraph") in out and "results    1" in out and "1.9 MB" in out
    code, out, _ = run(["cache", "info", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["files"] == 1 and data["file_bytes"] == 2_000_000


def test_cache_dir_option_and_environment(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "shared-store"
    Store.open(elsewhere).close()
    code, out, _ = run(["cache", "info", "--json", "--cache-dir", str(elsewhere)], capsys)
    assert code == 0 and json.loads(out)["store"] == str(elsewhere)
    monkeypatch.setenv("SHOTGRAPH_CACHE_DIR", str(elsewhere))
    code, out, _ = run(["cache", "info", "--json"], capsys)
    assert json.loads(out)["store"] == str(elsewhere)


def test_commands_on_a_missing_store(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("info", "verify", "gc"):
        code, out, _ = run(["cache", command], capsys)
        assert code == 0 and "no store at" in out
    assert not (project / ".shotgraph").exists()


def test_verify_and_repair(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store.open(project / ".shotgraph") as store:
        output = add_result(store, "a", b"a video")
        path = store.file_path(output.sha256)
    code, out, _ = run(["cache", "verify"], capsys)
    assert code == 0 and out.strip().endswith("ok")

    path.chmod(0o644)
    path.write_bytes(b"a vidEo")
    code, out, _ = run(["cache", "verify"], capsys)
    assert code == 1 and f"corrupt file   {output.sha256}" in out and "--repair" in out
    code, out, _ = run(["cache", "verify", "--repair", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["files_removed"] == 1 and data["records_removed"] == 1
    code, out, _ = run(["cache", "verify"], capsys)
    assert code == 0


def test_gc_keeps_keys_of_lockfiles_found_in_the_project(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(project / ".shotgraph") as store:
        add_result(store, "locked", b"locked")
        add_result(store, "other-lock", b"other")
        add_result(store, "unlocked", b"unlocked")
    write_lock(project / "pipelines" / "a.lock.json", {"intro": "locked"})
    write_lock(project / "shots" / "b.lock.json", {"outro": "other-lock"})
    # Lockfiles inside the store are not the project's.
    write_lock(project / ".shotgraph" / "tmp" / "x.lock.json", {"n": "unlocked"})

    code, out, _ = run(["cache", "gc", "--dry-run"], capsys)
    assert code == 0 and "would remove 1 result(s), 1 file(s)" in out
    code, out, _ = run(["cache", "gc", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["results_removed"] == 1 and data["kept_keys"] == 2
    assert len(data["lockfiles"]) == 2
    with Store.open(project / ".shotgraph") as store:
        assert store.get_result("locked") and store.get_result("other-lock")
        assert store.get_result("unlocked") is None


def test_gc_with_named_lockfiles(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(project / ".shotgraph") as store:
        add_result(store, "a", b"a")
        add_result(store, "b", b"b")
    write_lock(project / "all.lock.json", {"a": "a", "b": "b"})  # ignored: not named
    only_a = write_lock(tmp_path / "only-a.lock.json", {"a": "a"})
    code, _, _ = run(["cache", "gc", str(only_a)], capsys)
    assert code == 0
    with Store.open(project / ".shotgraph") as store:
        assert store.get_result("a") and store.get_result("b") is None


def test_gc_without_lockfiles_refuses_unless_all(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(project / ".shotgraph") as store:
        add_result(store, "a", b"a")
        assert store.claim("in-flight", Owner.current("r")) is None
        store.record_submission("in-flight", Owner.current("r"), "ep", {"request_id": "x"})
    code, _, err = run(["cache", "gc"], capsys)
    assert code == 1 and "no *.lock.json" in err and "--all" in err and "Traceback" not in err
    code, out, _ = run(["cache", "gc", "--all", "--grace", "0"], capsys)
    assert code == 0 and "removed 1 result(s)" in out and "kept 1 journal entry" in out
    with Store.open(project / ".shotgraph") as store:
        assert [key for key, _ in store.in_flight()] == ["in-flight"]


def test_gc_reports_a_bad_lockfile(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store.open(project / ".shotgraph").close()
    (project / "broken.lock.json").write_text("{not json")
    code, _, err = run(["cache", "gc"], capsys)
    assert code == 1 and "broken.lock.json: not a JSON lockfile" in err


def test_lock_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.lock.json"
    path.write_text(json.dumps({"nodes": {"a": {"key": "k1"}, "b": {"key": None}, "c": {}}}))
    assert lock_keys(path) == {"k1"}
    path.write_text(json.dumps({"nodes": {"a": {"key": 3}}}))
    with pytest.raises(ShotgraphError, match=r"nodes\.a\.key must be a string"):
        lock_keys(path)
    path.write_text(json.dumps({"version": 1}))
    with pytest.raises(ShotgraphError, match='needs a "nodes" object'):
        lock_keys(path)


def test_find_lockfiles_skips_stores_and_tooling(tmp_path: Path) -> None:
    for rel in ("a.lock.json", "sub/b.lock.json", ".git/c.lock.json", ".venv/d.lock.json"):
        write_lock(tmp_path / rel, {})
    write_lock(tmp_path / "store" / "e.lock.json", {})
    (tmp_path / "sub" / "notes.json").write_text("{}")
    found = find_lockfiles(tmp_path, exclude=tmp_path / "store")
    assert [p.relative_to(tmp_path.resolve()).as_posix() for p in found] == [
        "a.lock.json",
        "sub/b.lock.json",
    ]


def test_store_output_never_mentions_fal_key(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAL_KEY", "key-id:super-secret-value")
    with Store.open(project / ".shotgraph") as store:
        add_result(store, "a", b"a")
    for args in (["info", "--json"], ["verify", "--json"], ["gc", "--all", "--json"]):
        _, out, err = run(["cache", *args], capsys)
        assert "super-secret" not in out + err
    blob = b"".join(p.read_bytes() for p in (project / ".shotgraph").rglob("*") if p.is_file())
    assert b"super-secret" not in blob


def test_gc_says_what_the_grace_period_kept(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(project / ".shotgraph") as store:
        add_result(store, "fresh", b"fresh bytes", at=time.time())
    write_lock(project / "p.lock.json", {})
    code, out, _ = run(["cache", "gc"], capsys)
    assert code == 0 and "removed 0 result(s)" in out
    assert "spared 1 result(s) and 0 file(s)" in out and "grace period (1 h" in out, out
    assert "--grace 0" in out
    code, out, _ = run(["cache", "gc", "--grace", "0"], capsys)
    assert code == 0 and "removed 1 result(s)" in out and "spared" not in out
