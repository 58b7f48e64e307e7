"""The checks of the Python `ledger.entries.v1` consumer (ledger_entries_consumer.py) can fail:
on entries built with the code it generates from proto/, a balanced entry passes and each
broken promise (unbalanced currency, a float-formatted or zero amount, a wrong key, a duplicate
that differs) is reported. The consumer against a real ledger run: tests/tests/python_consumer.rs."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import ledger_entries_consumer as consumer  # noqa: E402


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    return consumer.generate(tmp_path_factory.mktemp("pb"))


def entry(pb, lines, entry_id="6f9619ff-8b86-4011-b42d-00c04fc964ff"):
    e = pb.JournalEntry(
        entry_id=entry_id,
        ledger="acct_1",
        rule="balance_transaction.charge",
        source_kind="balance_transaction",
        source_id="txn_1",
    )
    e.effective_at.seconds = 1_700_000_000
    e.recorded_at.seconds = 1_700_000_100
    for account, currency, amount in lines:
        e.lines.add(account=account, currency=currency, amount=amount)
    return e


def run(pb, *records):
    books = consumer.Books(pb)
    for key, e in records:
        books.add(key, e.SerializeToString())
    return books


def test_a_balanced_entry_passes_and_is_summed_exactly(pb):
    e = entry(pb, [("assets:stripe:pending", "kwd", "10.125"), ("income:sales", "kwd", "-10.12500")])
    books = run(pb, (f"acct_1/{e.entry_id}", e), (f"acct_1/{e.entry_id}", e))
    assert books.problems == []
    s = books.summary()
    assert (s["records"], s["entries"], s["lines"]) == (2, 1, 2)
    assert ["acct_1", "assets:stripe:pending", "kwd", "10.125"] in s["balances"]


@pytest.mark.parametrize(
    "lines, finding",
    [
        ([("a", "usd", ".5"), ("b", "usd", "-0.5")], "not an exact decimal"),
        ([("a", "usd", "1e1"), ("b", "usd", "-10")], "not an exact decimal"),
        ([("a", "usd", "0.1"), ("b", "usd", "-0.2")], "usd sums to -0.1"),
        ([("a", "usd", "5"), ("b", "eur", "-5")], "sums to"),
        ([("a", "usd", "0"), ("b", "usd", "0")], "a zero line"),
        ([("a", "USD", "1"), ("b", "USD", "-1")], "currency 'USD'"),
        ([("a", "usd", "1")], "1 line(s)"),
    ],
)
def test_each_broken_promise_is_reported(pb, lines, finding):
    e = entry(pb, lines)
    books = run(pb, (f"acct_1/{e.entry_id}", e))
    assert any(finding in p for p in books.problems), books.problems


def test_a_wrong_key_a_bad_id_and_a_differing_duplicate_are_reported(pb):
    good = [("a", "usd", "1"), ("b", "usd", "-1")]
    e = entry(pb, good)
    books = run(pb, ("acct_2/x", e))
    assert any("key 'acct_2/x'" in p for p in books.problems), books.problems
    bad = entry(pb, good, entry_id="not-a-uuid")
    books = run(pb, ("acct_1/not-a-uuid", bad))
    assert any("not a UUID" in p for p in books.problems), books.problems
    changed = entry(pb, [("a", "usd", "2"), ("b", "usd", "-2")])
    books = run(pb, (f"acct_1/{e.entry_id}", e), (f"acct_1/{e.entry_id}", changed))
    assert any("duplicate delivery differs" in p for p in books.problems), books.problems
    books = run(pb, ("k", entry(pb, good)))
    books.add("k", b"\xff\xff\xff")
    assert any("not a JournalEntry" in p for p in books.problems), books.problems
