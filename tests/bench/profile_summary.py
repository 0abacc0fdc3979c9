"""Where a gateway process spends its CPU, from a py-spy sample file, by part of the path.

    py-spy record --pid PID --duration 10 --rate 250 --format raw --output samples.txt
    python -m tests.bench.profile_summary samples.txt

Run it on ``fng-gateway serve`` while a benchmark loads it (for example
``bench_postjournals --targets gateway --seconds 30``). Samples where a thread waits (the
event loop's ``select``, a worker thread's queue, a lock) are left out, so the shares are of
the CPU the process used. Each sample goes to the first part below that a frame of its stack
belongs to, in this order, so a schema validation inside the journal's reading counts as
validation, not as reading.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Final

#: (part, pattern a frame "function (file:line)" matches), first match wins.
PARTS: Final = (
    ("XSD validation (journal, FNG's answer)", r"^SchemaRegistry\.issues "),
    ("content hash (exclusive c14n + SHA-256)", r"^(_c14n|_c14n_run|_start_tag|_hash_start) "),
    (
        "parsing the journal (and validating it, when streamed)",
        r"^(read_journal_source|stream_journal|utf8_document) ",
    ),
    ("parsing the SOAP envelope", r"^parse \(gateway/xmlsafe/parser\.py"),
    ("journal rules", r"^(read_journal|local_errors|_section_errors) "),
    (
        "ledger and store (incl. SQLite commits)",
        r"^(Ledger\.|Store\.|_connection_worker_thread|.*sqlalchemy/)",
    ),
    (
        "FNG call (aiohttp client, token, keys)",
        r"^(FngClient\.|_FngAuth\.|ClientSession\.|ClientRequest\.|ClientResponse\.)",
    ),
    (
        "authentication (password hash, registry)",
        r"^(authenticate|.*gateway/soap/security\.py|.*gateway/tenancy/)",
    ),
    ("answer envelope", r"^(response_element|serialize|envelope) "),
    (
        "HTTP server (aiohttp)",
        r"^(RequestHandler\.|HttpRequestParser|StreamWriter\.|StreamResponse\.|Response\.)",
    ),
    ("metrics and logs", r"^.*(gateway/observability/|prometheus_client/|logging/)"),
)
IDLE: Final = re.compile(
    r"^(EpollSelector\.select|select|poll|Condition\.wait|Event\.wait|_worker|Queue\.get|"
    r"BaseSelectorEventLoop\._read_from_self|wait) "
)


def summarize(lines: list[str]) -> tuple[Counter[str], int, int]:
    parts: Counter[str] = Counter()
    idle = total = 0
    rules = [(name, re.compile(pattern)) for name, pattern in PARTS]
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if IDLE.match(frames[-1]):
            idle += n
            continue
        total += n
        for name, rule in rules:
            if any(rule.match(frame) for frame in frames):
                parts[name] += n
                break
        else:
            parts["event loop and the rest"] += n
    return parts, total, idle


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("samples", type=Path, help="py-spy record --format raw output")
    options = args.parse_args(argv)
    parts, total, idle = summarize(options.samples.read_text().splitlines())
    if not total:
        print("no busy samples", file=sys.stderr)
        return 1
    print(f"{total} busy samples ({idle} waiting, left out)\n")
    print("| part of the path | share of CPU |\n|---|--:|")
    for name, n in parts.most_common():
        print(f"| {name} | {n / total:5.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
