"""A consumer of `ledger.entries.v1` written the way another team would: Python,
confluent-kafka (its own bundled librdkafka), and code generated from the repository's
`proto/` by grpcio-tools' protoc at run time (nothing generated is checked in).

It reads the topic from the beginning, decodes every record as a
`ledgerline.ledger.v1.JournalEntry`, deduplicates by `entry_id` (delivery is at least once) and
checks what the contract promises:

- the record key is `{ledger}/{entry_id}` and `entry_id` is a canonical UUID;
- every amount is a plain decimal string (no exponent, never zero), every
  currency a lower-case ISO code, every entry has at least two lines;
- every entry balances per currency (summed with `decimal.Decimal`, exactly);
- a duplicate delivery of an entry carries the same content.

Run as a script it waits until `--expect` distinct entries arrived (then until the topic stays
idle), prints a JSON summary on stdout (distinct entries, records, entry ids, per-account
balances) and exits 1 with the problems on stderr if any check failed.

    python tests/python/ledger_entries_consumer.py --bootstrap HOST:PORT \\
        --topic PREFIX.ledger.entries.v1 --expect 1234
"""

import argparse
import importlib
import importlib.resources
import json
import pathlib
import re
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"

# A plain decimal: no exponent, no sign but minus, no leading zeros, no bare point.
AMOUNT = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$")
CURRENCY = re.compile(r"^[a-z]{3}$")


def generate(out_dir):
    """Generates Python from proto/ledgerline/ledger/v1/entries.proto into `out_dir` with
    grpcio-tools' protoc and returns the imported `entries_pb2` module."""
    from grpc_tools import protoc

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            "ledgerline/ledger/v1/entries.proto",
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed with {rc} on {PROTO}")
    sys.path.insert(0, str(out_dir))
    try:
        return importlib.import_module("ledgerline.ledger.v1.entries_pb2")
    finally:
        sys.path.remove(str(out_dir))


class Books:
    """Distinct entries and what they add up to; `problems` lists every broken promise."""

    def __init__(self, pb):
        self.pb = pb
        self.entries = {}
        self.records = 0
        self.lines = 0
        self.problems = []
        self.balances = defaultdict(Decimal)

    def add(self, key, value):
        self.records += 1
        entry = self.pb.JournalEntry()
        try:
            entry.ParseFromString(value)
        except Exception as e:  # noqa: BLE001 - any decode failure is a finding
            self.problems.append(f"record {key!r}: not a JournalEntry ({e})")
            return
        eid = entry.entry_id
        canonical = entry.SerializeToString(deterministic=True)
        if eid in self.entries:
            if self.entries[eid] != canonical:
                self.problems.append(f"entry {eid}: a duplicate delivery differs")
            return
        self.entries[eid] = canonical
        self.check(key, entry)

    def check(self, key, e):
        eid = e.entry_id
        try:
            if str(uuid.UUID(eid)) != eid:
                self.problems.append(f"entry {eid!r}: id is not a canonical UUID")
        except ValueError:
            self.problems.append(f"entry {eid!r}: id is not a UUID")
        want_key = f"{e.ledger}/{eid}"
        if key != want_key:
            self.problems.append(f"entry {eid}: key {key!r}, expected {want_key!r}")
        if not e.ledger.startswith("acct_"):
            self.problems.append(f"entry {eid}: ledger {e.ledger!r} is not an acct_ id")
        if not e.rule or not e.source_id or e.source_kind not in (
            "event",
            "balance_transaction",
            "cash_application",
        ):
            self.problems.append(f"entry {eid}: rule/source missing or unknown")
        if not e.HasField("effective_at") or not e.HasField("recorded_at"):
            self.problems.append(f"entry {eid}: effective_at or recorded_at unset")
        if len(e.lines) < 2:
            self.problems.append(f"entry {eid}: {len(e.lines)} line(s)")
        sums = defaultdict(Decimal)
        for line in e.lines:
            self.lines += 1
            if not CURRENCY.match(line.currency):
                self.problems.append(f"entry {eid}: currency {line.currency!r}")
            if not AMOUNT.match(line.amount):
                self.problems.append(f"entry {eid}: amount {line.amount!r} is not an exact decimal")
                continue
            amount = Decimal(line.amount)
            if amount == 0:
                self.problems.append(f"entry {eid}: a zero line on {line.account}")
            sums[line.currency] += amount
            self.balances[(e.ledger, line.account, line.currency)] += amount
        for currency, total in sorted(sums.items()):
            if total != 0:
                self.problems.append(f"entry {eid}: {currency} sums to {total}, not zero")

    def summary(self):
        return {
            "records": self.records,
            "entries": len(self.entries),
            "lines": self.lines,
            "ids": sorted(self.entries),
            "balances": [
                [ledger, account, currency, str(amount.normalize()) if amount else "0"]
                for (ledger, account, currency), amount in sorted(self.balances.items())
                if amount != 0
            ],
        }


def consume(bootstrap, topic, expect, timeout, idle, books):
    """Reads `topic` from the beginning until `expect` distinct entries arrived and the topic
    stayed idle for `idle` seconds (or `timeout` passed)."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"python-entries-consumer-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if len(books.entries) >= expect and time.monotonic() - last >= idle:
                    return
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"kafka: {msg.error()}")
            last = time.monotonic()
            key = (msg.key() or b"").decode("utf-8", "replace")
            books.add(key, msg.value() or b"")
    finally:
        consumer.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--expect", type=int, required=True, help="distinct entries to wait for")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--idle", type=float, default=2.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ledgerline-pb-") as out:
        books = Books(generate(pathlib.Path(out)))
    consume(args.bootstrap, args.topic, args.expect, args.timeout, args.idle, books)
    if len(books.entries) != args.expect:
        books.problems.append(
            f"{len(books.entries)} distinct entries on {args.topic}, expected {args.expect}"
        )
    json.dump(books.summary(), sys.stdout)
    sys.stdout.write("\n")
    for problem in books.problems[:50]:
        print(f"problem: {problem}", file=sys.stderr)
    if books.problems:
        print(f"{len(books.problems)} problems", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
