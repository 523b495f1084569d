"""The plan's lookup of which keys have a usable result (``Store.usable_results``): it tells
rows as ``put_result`` writes them by their text, and must answer as the record check
(``results_for``) does for every row, plain, unusual or damaged."""

from __future__ import annotations

import pytest

from runner.store import Store
from runner.store.store import _result_text
from tests.store.test_store import put_bytes, result


def same_answers(store: Store, keys: list[str]) -> set[str]:
    """The usable keys, checked against the record check on both backends."""
    for backend in ("local", "fal"):
        assert store.usable_results(keys, backend) == set(store.results_for(keys, backend))
    return store.usable_results(keys, "local")


def test_plain_rows_are_told_by_their_text(store: Store) -> None:
    out = put_bytes(store, b"clip")
    gone = put_bytes(store, b"deleted clip", "gone.bin")
    store.put_result(result("k-render", out, extra={"returned_seed": 7}))
    store.put_result(result("k-frame", out, kind="frame", endpoint=None, request_id=None, extra={}))
    store.put_result(result("k-gone", gone, extra={}))
    store.file_path(gone.sha256).unlink()
    store.put_result(result("k-nested", out))  # extra holds an object: read whole
    plain = {"k-render", "k-frame", "k-gone"}
    assert {k for k in plain if _result_text().fullmatch(store._results._cache.get(k))} == plain
    keys = ["k-render", "k-frame", "k-gone", "k-nested", "k-missing", "k-render"]
    assert same_answers(store, keys) == {"k-render", "k-frame", "k-nested"}
    assert store.delete_result("k-render")  # an entry deleted is no longer there
    assert same_answers(store, keys) == {"k-frame", "k-nested"}


# Edits of a plain row's text: each makes a row the record check refuses (or reads
# differently); the text shortcut must never take one for a usable result.
DAMAGE = [
    ('"v":1,', '"v":2,'),
    ('"seed":7,', '"seed":"7",'),
    ('"seed":7,', '"seed":7.5,'),
    ('"kind":"i2v"', '"kind":null'),
    ('"node":"intro"', '"node":1'),
    ('"size":4}', '"size":04}'),
    ('"size":4}', '"size":-4}'),
    ('"size":4}', '"size":5}'),
    ('"recorded_at":', '"recorded_at":"'),
    ('"backend":"local"', '"backend":"fal"'),
    ('"sha256":"', '"sha256":"A'),
    ('"extra":{', '"extra":[{'),
    ('"content_type":"video/mp4"', '"content_type":"video/mp4\x00"'),
    ('"content_type":"video/mp4"', '"content_type":"video/mp4\n"'),
]


@pytest.mark.parametrize(("old", "new"), DAMAGE)
def test_a_damaged_row_is_never_taken_for_a_result(store: Store, old: str, new: str) -> None:
    out = put_bytes(store, b"clip")
    store.put_result(result("k", out, extra={"returned_seed": 7}))
    text = store._results._cache.get("k")
    assert isinstance(text, str) and old in text and _result_text().fullmatch(text)
    assert same_answers(store, ["k"]) == {"k"}
    store._results._cache.set("k", text.replace(old, new, 1))
    assert same_answers(store, ["k"]) == set()


def test_a_row_that_is_not_text_is_read_as_the_record_check_reads_it(store: Store) -> None:
    store._results._cache.set("k-bytes", b'{"v":1}')
    store._results._cache.set("k-number", 7)
    assert same_answers(store, ["k-bytes", "k-number"]) == set()
