"""The compile memo answers only while nothing the pipeline read has changed, and only
when this machine made it: one a pull request commits into a store in the project (made
elsewhere, or crafted) is not read, and compiling answers instead."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner import cli
from runner.compile.check import check_pipeline
from runner.compile.lock_memo import lock_known_good
from runner.compile.memo import HASHED_BYTES, check_and_remember, recall, recall_findings
from runner.compile.memo_payload import _slotted, unpickle
from runner.pipeline.records import KeyframeRef
from runner.pipeline.sourcemap import SourceMap
from runner.store import Store
from runner.store.memos import (
    KEY_FILE,
    machine_key,
    memo_slot,
    read_memo,
    read_note,
    write_memo,
    write_note,
)
from tests.helpers import project
from tests.record_helpers import cache_every_node

PIPELINE = """version: 1
name: memo
imports: [presets/studio.yaml]
defaults: {preset: house}
characters:
  mara: {description: a woman in a yellow raincoat, keyframes: {front: assets/key.png}}
nodes:
  shot:
    kind: i2v
    image: {keyframe: mara.front}
    prompt: {template: shot.j2, vars: {shot: Close-up, action: breathing}}
  more:
    kind: extend
    video: {from: shot}
    prompt: {template: continue.j2, vars: {action: a smile}}
"""
PRESETS = "presets:\n  house: {extends: cinematic-5s, second_pass_num_inference_steps: 13}\n"
SHOT = "{{ shot }} of {{ character.name }}, {{ action }}"


def memo_project(root: Path, text: str = PIPELINE, template: str = SHOT) -> Path:
    """A project with a preset file and a template of its own; its pipeline ``text``."""
    project(root)
    (root / "presets").mkdir()
    (root / "presets" / "studio.yaml").write_text(PRESETS)
    (root / "templates").mkdir()
    (root / "templates" / "shot.j2").write_text(template)
    path = root / "p.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    return memo_project(tmp_path / "proj")


def remember(pipeline: Path, store: Path, backend: str = "local") -> dict[str, str]:
    """Check and remember; the keys it compiled. The memo answers until something changes,
    so a test's ``recall(...) is None`` after a change is that change's doing."""
    result = check_and_remember(pipeline, backend, store)
    assert not result.errors, [d.render() for d in result.errors]
    assert result.compiled is not None
    assert recall(pipeline, backend, store) is not None
    return {name: step.key for name, step in result.compiled.steps.items()}


def test_an_unchanged_pipeline_is_answered_from_the_memo(pipeline: Path, store: Path) -> None:
    keys = remember(pipeline, store)
    recalled = recall(pipeline, "local", store)
    assert recalled is not None and recalled.compiled is not None
    fresh = check_pipeline(pipeline, backend="local").require()
    assert {n: s.key for n, s in recalled.compiled.steps.items()} == keys
    for name, step in fresh.steps.items():
        again = recalled.compiled.steps[name]
        assert (again.body, again.slots, again.seed) == (step.body, step.slots, step.seed)
    assert recalled.outputs == check_pipeline(pipeline, backend="local").outputs
    # The memo leaves the records out: that is how a reader knows to compile for them.
    assert recalled.compiled.pipeline.name == "memo" and not recalled.compiled.pipeline.nodes


def test_the_pipeline_text(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    pipeline.write_text(PIPELINE.replace("a smile", "a frown"))
    assert recall(pipeline, "local", store) is None


def test_a_template(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    (pipeline.parent / "templates" / "shot.j2").write_text("{{ shot }}: {{ action }}")
    assert recall(pipeline, "local", store) is None


def test_a_template_that_now_shadows_the_shipped_one(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)  # continue.j2 came from shotgraph's own templates
    (pipeline.parent / "templates" / "continue.j2").write_text("then {{ action }}")
    assert recall(pipeline, "local", store) is None


def test_a_preset_file(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    (pipeline.parent / "presets" / "studio.yaml").write_text(PRESETS.replace("13", "12"))
    assert recall(pipeline, "local", store) is None


def test_a_keyframe_replaced_by_another_of_the_same_size(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    key = pipeline.parent / "assets" / "key.png"
    other = pipeline.parent / "other.png"
    data = bytearray(key.read_bytes())
    data[-20] ^= 0xFF
    other.write_bytes(bytes(data))
    os.replace(other, key)
    assert recall(pipeline, "local", store) is None


def test_a_big_keyframe_rewritten_in_place_with_its_old_mtime(pipeline: Path, store: Path) -> None:
    """Too big to hash on every run: its stat tells (ctime moves whatever mtime says)."""
    key = pipeline.parent / "assets" / "key.png"
    key.write_bytes(key.read_bytes() + bytes(HASHED_BYTES))
    old = time.time() - 60
    os.utime(key, (old, old))
    remember(pipeline, store)
    assert recall(pipeline, "local", store) is not None
    time.sleep(0.01)  # a ctime tick on coarse clocks
    with open(key, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff")
    os.utime(key, (old, old))
    assert recall(pipeline, "local", store) is None


def test_a_file_written_moments_ago_is_not_trusted_by_its_stat(pipeline: Path, store: Path) -> None:
    key = pipeline.parent / "assets" / "key.png"
    key.write_bytes(key.read_bytes() + bytes(HASHED_BYTES))
    assert not check_and_remember(pipeline, "local", store).errors
    assert read_memo(store, memo_slot(pipeline, "local")) is None
    old = time.time() - 60  # the same file, written long enough ago, is remembered
    os.utime(key, (old, old))
    remember(pipeline, store)


def test_the_backend(pipeline: Path, store: Path) -> None:
    remember(pipeline, store, backend="local")
    assert recall(pipeline, "fal", store) is None
    # Even a memo of the other backend moved into this backend's place is not taken.
    shutil.copy(
        store / "memos" / memo_slot(pipeline, "local"), store / "memos" / memo_slot(pipeline, "fal")
    )
    assert recall(pipeline, "fal", store) is None


def test_a_memo_holding_anything_but_records_is_refused(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    found = read_memo(store, memo_slot(pipeline, "local"))
    assert found is not None
    header, _ = found
    hostile = pickle.dumps(os.system, protocol=pickle.HIGHEST_PROTOCOL)
    write_memo(store, memo_slot(pipeline, "local"), header, hostile)
    assert recall(pipeline, "local", store) is None


def test_a_line_map_is_rebuilt_from_a_file_name_only() -> None:
    """A memo names a line map's file by a string; anything else under that name (here a
    list, which a real line map's lines would be) is refused."""
    kept = unpickle(pickle.dumps(_Crafted("p.yaml"), protocol=pickle.HIGHEST_PROTOCOL))
    assert isinstance(kept, SourceMap) and kept.file == Path("p.yaml")
    assert unpickle(pickle.dumps(_Crafted(["lines"]), protocol=pickle.HIGHEST_PROTOCOL)) is None


def test_a_slotted_record_is_built_of_its_own_fields_only() -> None:
    """A record with slots is kept as its class and its fields' values: a memo that names
    another class, or the wrong number of values, is refused."""
    record = KeyframeRef("mara", "front")
    assert unpickle(pickle.dumps(_Slotted(KeyframeRef, ("mara", "front")))) == record
    for cls, values in [
        (KeyframeRef, ("mara",)),
        (KeyframeRef, ["mara", "front"]),
        (Path, ("mara", "front")),
        (frozenset, ((),)),
    ]:
        assert unpickle(pickle.dumps(_Slotted(cls, values))) is None


class _Slotted:
    """Pickles as a record with slots is kept in a memo (or as a crafted one)."""

    def __init__(self, cls: object, values: object) -> None:
        self.cls, self.values = cls, values

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return _slotted, (self.cls, self.values)


def test_a_memo_whose_parts_are_not_where_it_says_is_refused(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    found = read_memo(store, memo_slot(pipeline, "local"))
    assert found is not None and recall_findings(pipeline, "local", store) is not None
    header, payload = found
    findings, result = struct.unpack_from(">QQ", payload)
    for lengths in ((findings - 1, result + 1), (findings + 1, result - 1)):
        moved = struct.pack(">QQ", *lengths) + payload[16:]
        write_memo(store, memo_slot(pipeline, "local"), header, moved)
        assert recall_findings(pipeline, "local", store) is None
        assert recall(pipeline, "local", store) is None


class _Crafted:
    """Pickles as a line map of ``file`` would (or as a crafted one)."""

    def __init__(self, file: object) -> None:
        self.file = file

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return SourceMap, (self.file,)


def test_a_deleted_store_entry_shows_in_the_plan(
    pipeline: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The memo keeps the compile, never the cache status: that is the store's, each time."""
    compiled = check_pipeline(pipeline, backend="local").require()
    cache_every_node(pipeline, store)

    def plan() -> dict[str, str]:
        args = ["plan", str(pipeline), "--backend", "local", "--json", "--cache-dir", str(store)]
        assert cli.run(args) == 0
        rows = json.loads(capsys.readouterr().out)["nodes"]
        return {row["node"]: row["status"] for row in rows}

    assert plan() == {"shot": "cached", "more": "cached"}
    assert recall(pipeline, "local", store) is not None  # the next plan starts from it
    with Store.open(store) as opened:
        assert opened.delete_result(compiled.steps["more"].key)
    assert plan() == {"shot": "cached", "more": "render"}


def test_the_review_file_appearing_or_changing(pipeline: Path, store: Path) -> None:
    """Picks and verdicts come with the pipeline: a review file that appears counts too."""
    remember(pipeline, store)
    review = pipeline.with_suffix(".review")
    review.write_text(f'shot approved={"a" * 64} note="lovely light"\n')
    assert recall(pipeline, "local", store) is None
    remember(pipeline, store)
    assert recall(pipeline, "local", store) is not None
    review.write_text(f'shot rejected={"a" * 64} note="too dark"\n')
    assert recall(pipeline, "local", store) is None


HEAVY = {"jinja2", "yaml", "runner.compile.compiler", "runner.pipeline.load"}
HEAVY |= {"runner.compile.request", "runner.pipeline.templates", "httpx", "runner.emulator"}
HEAVY |= {"runner.compile.reuse", "runner.pipeline.schema_check"}
LOADED = """import json, sys
from runner import cli
code = cli.run(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def loaded_by(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has loaded after ``shotgraph ARGS``."""
    report = tmp_path / "loaded.json"
    command = [sys.executable, "-c", LOADED, str(report), *args]
    subprocess.run(command, capture_output=True, check=True, cwd=Path(__file__).parents[2], env=env)
    done = json.loads(report.read_text())
    assert done["code"] == 0
    return set(done["modules"])


def test_a_memo_hit_loads_neither_the_compiler_nor_jinja(
    pipeline: Path, store: Path, tmp_path: Path
) -> None:
    """What answering from the memo needs, and no more: a plan, a no-op run or a validate
    that loaded the compiler, YAML or Jinja compiled again, or loads what it need not."""
    cache_every_node(pipeline, store)
    remember(pipeline, store)
    where = ["--backend", "local", "--cache-dir", str(store)]
    planned = loaded_by(tmp_path, "plan", str(pipeline), *where, "--json")
    assert "runner.compile.memo" in planned and not HEAVY & planned
    ran = loaded_by(tmp_path, "run", str(pipeline), *where, "--plain")
    assert "runner.run.executor" in ran and not HEAVY & ran
    # validate finds the store where a run would ($SHOTGRAPH_CACHE_DIR here).
    env = os.environ | {"SHOTGRAPH_CACHE_DIR": str(store)}
    validated = loaded_by(tmp_path, "validate", str(pipeline), "--backend", "local", env=env)
    assert "runner.compile.memo" in validated and not HEAVY & validated
    # Without the memo the same plan compiles: the test can tell the two apart.
    shutil.rmtree(store / "memos")
    assert {"jinja2", "runner.compile.compiler"} <= loaded_by(
        tmp_path, "plan", str(pipeline), *where
    )


# -- signed by this machine: a memo or note a pull request commits is not read ---------


def another_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, the key is another user's or machine's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))


def test_the_key_is_made_once_private_to_its_owner(tmp_path: Path) -> None:
    key = machine_key()
    path = Path(os.environ["XDG_CACHE_HOME"]) / "shotgraph" / KEY_FILE
    assert key is not None and len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert machine_key() == key
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temporary file left


def test_a_memo_made_elsewhere_is_not_read_and_the_compile_answers(
    pipeline: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember(pipeline, store)
    assert recall_findings(pipeline, "local", store) is not None
    another_machine(tmp_path, monkeypatch)
    assert recall(pipeline, "local", store) is None
    assert recall_findings(pipeline, "local", store) is None
    # The compile answers, and its memo is this machine's from then on.
    again = check_and_remember(pipeline, "local", store)
    fresh = check_pipeline(pipeline, backend="local").require()
    assert again.compiled is not None
    assert {n: s.key for n, s in again.compiled.steps.items()} == {
        n: s.key for n, s in fresh.steps.items()
    }
    assert recall(pipeline, "local", store) is not None


def test_a_memo_changed_by_one_byte_is_not_read(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    path = store / "memos" / memo_slot(pipeline, "local")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert recall(pipeline, "local", store) is None


def test_a_note_made_elsewhere_is_not_read(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_note(store, "note", {"made_from": "x"})
    assert read_note(store, "note") == {"made_from": "x"}
    lock_file = tmp_path / "p.lock.json"
    lock_file.write_text("{}")
    another_machine(tmp_path, monkeypatch)
    assert read_note(store, "note") is None
    assert not lock_known_good(store, lock_file)


@pytest.mark.parametrize("damage", ["readable by others", "wrong size", "a symbolic link"])
def test_a_key_not_private_to_its_owner_turns_memos_off(
    damage: str, pipeline: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache" / "shotgraph"
    folder.mkdir(parents=True)
    key = folder / KEY_FILE
    if damage == "a symbolic link":
        (tmp_path / "shared.key").write_bytes(b"k" * 32)
        (tmp_path / "shared.key").chmod(0o600)
        key.symlink_to(tmp_path / "shared.key")
    else:
        key.write_bytes(b"k" * (31 if damage == "wrong size" else 32))
        key.chmod(0o644 if damage == "readable by others" else 0o600)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert machine_key() is None
    result = check_and_remember(pipeline, "local", store)
    assert result.compiled is not None and not result.errors
    assert recall(pipeline, "local", store) is None
