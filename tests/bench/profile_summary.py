"""Where a gateway process spends its CPU, from a py-spy sample file, by part of the path.

    py-spy record --pid PID --duration 10 --rate 250 --format raw --output samples.txt
    python -m tests.bench.profile_summary samples.txt

Run it on ``fng-gateway serve`` while a benchmark loads it (for example
``bench_postjournals --targets gateway --seconds 30``). Samples where a thread waits (the
event loop's ``select``, a worker thread's queue, a lock) are left out, so the shares are of
the CPU the process used. Each sample goes to the part of the innermost frame of its stack
that belongs to one, so a schema validation inside the journal's reading counts as
validation, not as reading, and the FNG call inside the ledger as the FNG call.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Final

#: (part, pattern a frame "function (file:line)" matches, and a pattern its caller's frame
#: must match too, or None). A sample goes to the part of its innermost frame that matches
#: one, so the FNG call made inside the ledger's ``submit`` counts as the FNG call, and
#: the validation of FNG's answer inside that call as validation.
PARTS: Final = (
    ("XSD validation (journal, FNG's answer)", r"^SchemaRegistry\.issues ", None),
    (
        "content hash (exclusive c14n + SHA-256)",
        r"^(_c14n|_c14n_run|_start_tag|_hash_start) ",
        None,
    ),
    ("journal rules", r"^(read_journal|local_errors|_section_errors) ", None),
    (
        "parsing the journal (and validating it, when streamed)",
        r"^(read_journal_source|stream_journal|utf8_document) ",
        None,
    ),
    (
        "parsing the SOAP envelope",
        r"^(parse \(gateway/xmlsafe/parser\.py|read_message )",
        r"^SoapService\._(soap|plain) ",
    ),
    ("metrics and logs", r"^.*(gateway/observability/|prometheus_client/|logging/)", None),
    (
        "FNG call (aiohttp client, token, keys)",
        r"^(FngClient\.|_FngAuth\.|ClientSession\.|ClientRequest\.|ClientResponse\.|"
        r"ResponseHandler\.|.*gateway/fng/)",
        None,
    ),
    (
        "authentication (password hash, registry)",
        r"^(authenticate|.*gateway/soap/security\.py|.*gateway/tenancy/)",
        None,
    ),
    (
        "ledger and store (incl. SQLite commits)",
        r"^(Ledger\.|Store\.|_GroupCommit\.|_connection_worker_thread|.*sqlalchemy/)",
        None,
    ),
    (
        "the gateway's SOAP and E-Journal handling (middleware, operations, answer)",
        r"^.*gateway/(soap|ejournal)/",
        None,
    ),
    (
        "HTTP server (aiohttp)",
        r"^(RequestHandler\.|HttpRequestParser|StreamWriter\.|StreamResponse\.|Response\.|"
        r".*aiohttp/web)",
        None,
    ),
)
#: Frames that, innermost, are a thread waiting: the event loop's ``select``, and a worker
#: thread (the store's, aiosqlite's, the default executor's) waiting on its queue, whose
#: wait is in C, so that py-spy may not see it as idle.
IDLE: Final = re.compile(
    r"^(EpollSelector\.select|select|poll|Condition\.wait|Event\.wait|_worker|Queue\.get|"
    r"_connection_worker_thread|BaseSelectorEventLoop\._read_from_self|wait) "
)


def summarize(lines: list[str]) -> tuple[Counter[str], int, int]:
    parts: Counter[str] = Counter()
    idle = total = 0
    rules = [
        (name, re.compile(pattern), None if caller is None else re.compile(caller))
        for name, pattern, caller in PARTS
    ]
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
        parts[_part(frames, rules)] += n
    return parts, total, idle


def _part(
    frames: list[str], rules: list[tuple[str, re.Pattern[str], re.Pattern[str] | None]]
) -> str:
    """The part of the innermost frame that belongs to one."""
    for depth in range(len(frames) - 1, -1, -1):
        for name, rule, caller in rules:
            if rule.match(frames[depth]) and (
                caller is None or (depth > 0 and caller.match(frames[depth - 1]))
            ):
                return name
    return "event loop and the rest"


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
