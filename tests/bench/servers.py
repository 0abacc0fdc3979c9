"""The benchmark's two stand-in servers, each run as its own process.

    python -m tests.bench.servers upstream    [--port N] [--token-latency-ms MS]
    python -m tests.bench.servers passthrough --upstream URL [--port N]
    python -m tests.bench.servers naive       --upstream URL [--port N]

``upstream`` plays SIMS ID and FNG with fixed answers: a bearer token for any
``POST /connect/token`` and an ``isSuccess="true"`` JournalResult for any
``POST /fng/api/JournalInterface/PostJournals``, whose body it reads fully but does
nothing with. ``GET /_stats`` counts what it has answered (``tokens``, ``posts``), so the
benchmark can check that every call it made really reached the upstream.
``--token-latency-ms`` makes each token answer wait that long first, as a real SIMS ID
takes a while, which leaves time for concurrent callers to ask for a token too.

``passthrough`` is the least an aiohttp gateway can do: read the SOAP request, forward
its body to the upstream with one pooled client session, and wrap the answer in a SOAP
envelope.

``naive`` is the least a gateway that checks what it forwards can do, in aiohttp and lxml:
parse the SOAP envelope, take the journal out of ``xmlData``, parse it and validate it
against the E-Journal schema the gateway ships, forward it, and wrap the answer. No
authentication, no token, no ledger, no journal rules: the cost of the XML work alone.

Each prints ``listening on <port>`` on standard output once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web
from lxml import etree

POST_JOURNALS_PATH: Final = "/fng/api/JournalInterface/PostJournals"
TOKEN_PATH: Final = "/connect/token"

#: Valid against schemas/ejournal/Results.xsd (isSuccess is its one required attribute).
JOURNAL_RESULT: Final = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<JournalResult isSuccess="true" systemIdentifier="TPPCS" submissionID="bench" '
    b'transactionLineCount="0"/>'
)
TOKEN: Final = json.dumps(
    {"access_token": "bench-access-token", "expires_in": 3600, "token_type": "Bearer"}
).encode()

SOAP_PREFIX: Final = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<PostJournalsResponse xmlns="urn:fng-gateway:ejournal"><PostJournalsResult>'
)
SOAP_SUFFIX: Final = b"</PostJournalsResult></PostJournalsResponse></soap:Body></soap:Envelope>"

SCHEMA: Final = Path(__file__).resolve().parents[2] / "schemas" / "ejournal" / "ControlAccounts.xsd"
#: What any gateway facing the Internet parses with: no entities, no network, no DTD.
PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)

COUNTS: Final = web.AppKey("counts", dict[str, int])
TOKEN_LATENCY: Final = web.AppKey("token_latency", float)
SESSION: Final = web.AppKey("session", aiohttp.ClientSession)


# -- the fixed-answer upstream ---------------------------------------------------------------


async def _token(request: web.Request) -> web.Response:
    await request.read()
    request.app[COUNTS]["tokens"] += 1
    if request.app[TOKEN_LATENCY] > 0:
        await asyncio.sleep(request.app[TOKEN_LATENCY])
    return web.Response(body=TOKEN, content_type="application/json")


async def _post_journals(request: web.Request) -> web.Response:
    await request.read()
    request.app[COUNTS]["posts"] += 1
    return web.Response(body=JOURNAL_RESULT, content_type="application/xml", charset="utf-8")


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


def upstream_app(token_latency: float = 0.0) -> web.Application:
    """The fixed-answer upstream; each token answer waits ``token_latency`` seconds first."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[COUNTS] = {"tokens": 0, "posts": 0}
    app[TOKEN_LATENCY] = token_latency
    app.router.add_post(TOKEN_PATH, _token)
    app.router.add_post(POST_JOURNALS_PATH, _post_journals)
    app.router.add_get("/_stats", _stats)
    return app


# -- the bare pass-through and the naive gateway --------------------------------------------


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One pooled client session for the app's calls upstream."""
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[SESSION] = session
        yield


async def _forward(request: web.Request, upstream_url: str, data: bytes) -> web.Response:
    """Post ``data`` upstream and answer with the result in a SOAP envelope."""
    async with request.app[SESSION].post(
        upstream_url,
        data=data,
        headers={"Content-Type": "application/xml; charset=utf-8"},
    ) as answer:
        result = await answer.read()
        status = answer.status
    if status != 200:
        raise web.HTTPBadGateway(text=f"upstream answered HTTP {status}\n")
    if result.startswith(b"<?xml"):
        result = result.split(b"?>", 1)[1].lstrip()
    return web.Response(
        body=SOAP_PREFIX + result + SOAP_SUFFIX,
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )


def _soap_app(handler: Callable[[web.Request], Awaitable[web.Response]]) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(_session_ctx)
    app.router.add_post("/soap/ejournal", handler)
    return app


def passthrough_app(upstream_url: str) -> web.Application:
    async def soap(request: web.Request) -> web.Response:
        return await _forward(request, upstream_url, await request.read())

    return _soap_app(soap)


def naive_app(upstream_url: str) -> web.Application:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA), PARSER))

    async def soap(request: web.Request) -> web.Response:
        envelope = etree.fromstring(await request.read(), PARSER)
        xml_data = envelope.find("{*}Body/{*}PostJournals/{*}xmlData")
        if xml_data is None:
            raise web.HTTPBadRequest(text="no xmlData\n")
        if len(xml_data):  # sent as XML
            journal = xml_data[0]
            data = etree.tostring(journal)
        else:  # sent as text, as SOAP clients send a string
            data = (xml_data.text or "").encode()
            journal = etree.fromstring(data, PARSER)
        if not schema.validate(journal):
            raise web.HTTPBadRequest(text=f"{schema.error_log.last_error}\n")
        return await _forward(request, upstream_url, data)

    return _soap_app(soap)


# -- running ---------------------------------------------------------------------------------


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    print(f"listening on {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.servers")
    parser.add_argument("role", choices=["upstream", "passthrough", "naive"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--upstream", help="the upstream's PostJournals URL (passthrough, naive)")
    parser.add_argument(
        "--token-latency-ms",
        type=float,
        default=0.0,
        help="upstream: how long each token answer waits before it is sent",
    )
    args = parser.parse_args(argv)
    if args.role == "upstream":
        app = upstream_app(args.token_latency_ms / 1000)
    else:
        if not args.upstream:
            parser.error(f"{args.role} needs --upstream")
        make = passthrough_app if args.role == "passthrough" else naive_app
        app = make(args.upstream)
    asyncio.run(_serve(app, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
