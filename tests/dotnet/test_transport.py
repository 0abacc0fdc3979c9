"""The transport on old frameworks: TLS 1.2 switched on where .NET 4.5 leaves it off, and the
machine's proxy honoured."""

from __future__ import annotations

import contextlib
import fcntl
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.dotnet.conftest import CI, QUICK, DotNet, GatewayProcess, journal
from tests.dotnet.relay import Relay, self_signed

pytestmark = pytest.mark.dotnet

TLS10, TLS12 = 192, 3072


class TestTls:
    async def test_tls12_is_switched_on_for_a_dotnet45_application(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """A TLS terminator that refuses anything below TLS 1.2 stands in front of the
        gateway. The program allows TLS 1.0 only, as .NET 4.5 does by default: a plain
        request fails, the library's call succeeds, and TLS 1.0 is still allowed after it."""
        certificate = self_signed(tmp_path)
        async with Relay(gateway.url, tls=certificate.server_context()) as relay:
            steps = (
                await dotnet.scenario(
                    "tls", f"thumbprint={certificate.sha1}", *gateway.account(relay.url)
                )
            ).steps

        raw, banks, after, system_banks, system = steps
        # Without the library the handshake fails: the runtime offers TLS 1.0 only.
        assert raw["protocols"] == TLS10
        assert raw["error"] == "SecureChannelFailure", raw
        # With it, GetBanks goes over TLS 1.2.
        assert banks["isSuccess"] is True, banks
        assert banks["banks"] == "BK1::,BK2::,BK3::"
        assert after["protocols"] & TLS12 and after["protocols"] & TLS10  # added, none removed
        # SystemDefault (.NET 4.7 and later) is left to the operating system.
        assert system_banks["isSuccess"] is True, system_banks
        assert system["protocols"] == 0
        # The terminator refused the first handshake for its version; the others succeeded.
        assert relay.tls_failures == ["UNSUPPORTED_PROTOCOL"]
        assert len(relay.requests) == 2

    async def test_an_untrusted_certificate_is_not_retried(
        self, dotnet: DotNet, tmp_path: Path
    ) -> None:
        certificate = self_signed(tmp_path)
        async with Relay("http://127.0.0.1:9", tls=certificate.server_context()) as relay:
            failed = (
                await dotnet.scenario(
                    "banks", f"server={relay.url}", "database=k", "username=u", "password=p"
                )
            ).step
        assert failed["code"] == "TLS_FAILED", failed
        assert (failed["attempts"], failed["httpStatus"]) == (1, 0)
        assert "certificate" in failed["message"]
        assert len(relay.tls_failures) == 1 and relay.requests == [], relay.tls_failures

    async def test_a_failed_handshake_is_retried(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """A TLS terminator fails a handshake now and then (here: it offers only a version
        the client lacks). Nothing was sent, so GetBanks and PostJournals are sent again; an
        audit note, sent again only after a refused connection or TOKEN_UNAVAILABLE, is not."""
        certificate = self_signed(tmp_path)
        failing = certificate.server_context()
        failing.minimum_version = ssl.TLSVersion.TLSv1_3  # Mono's TLS stops at 1.2
        trust = f"thumbprint={certificate.sha1}"
        async with Relay(
            gateway.url, tls=certificate.server_context(), handshakes=(failing,)
        ) as relay:
            banks = (
                await dotnet.scenario("banks", trust, *gateway.account(relay.url), *QUICK)
            ).step
            relay.handshakes = [failing, failing]
            post = (
                await dotnet.scenario(
                    "post", f"file={journal(tmp_path)}", trust, *gateway.account(relay.url), *QUICK
                )
            ).step
            relay.handshakes = [failing]
            audit = (
                await dotnet.scenario(
                    "audit", "message=note", trust, *gateway.account(relay.url), *QUICK
                )
            ).step

        assert banks["isSuccess"] is True, banks
        assert post["isSuccess"] == "true", post
        assert post["replayed"] == ""
        assert await gateway.submissions() == ["0071"]
        assert audit["code"] == "TLS_FAILED", audit
        assert audit["attempts"] == 1
        assert relay.tls_failures == ["UNSUPPORTED_PROTOCOL"] * 4
        assert len(relay.requests) == 2

    async def test_a_host_name_alone_at_a_plain_http_gateway_is_told_to_write_http(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        """A host name alone means https; the sandbox serves plain http, so the handshake
        fails, and the message says what to write."""
        authority = gateway.url.removeprefix("http://").rstrip("/")
        implied, written = [
            (await dotnet.scenario("banks", *gateway.account(server), *QUICK)).step
            for server in (authority, f"https://{authority}")
        ]
        for failed in (implied, written):
            assert failed["code"] == "TLS_FAILED", failed
            # A server that does not speak TLS will not on the next attempt.
            assert (failed["httpStatus"], failed["attempts"]) == (0, 1)
        assert implied["message"].endswith(
            "The server address was given without a scheme, which means https: if the gateway"
            f" at {authority} serves plain http, as the sandbox does, write http:// before it."
        ), implied
        # Written out, https is what was meant: no such hint.
        assert "without a scheme" not in written["message"], written
        assert await gateway.submissions() == []


class TestConnections:
    async def test_threads_sharing_a_processor_are_not_queued(
        self, dotnet: DotNet, gateway: GatewayProcess
    ) -> None:
        """Eight threads call GetBanks at once on one processor, each call taking two
        seconds in an ingress: all eight are under way together, not two at a time (.NET's
        default per endpoint)."""
        async with Relay(gateway.url, hold=2.0) as relay:
            run = (
                await dotnet.scenario("parallel", "calls=8", *gateway.account(relay.url), *QUICK)
            ).step
            assert relay.max_in_flight == 8, (relay.max_in_flight, run)

        assert run["results"] == ",".join(["ok"] * 8)
        assert run["elapsed_ms"] < 6000, run  # two at a time would take eight seconds


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not a loopback address."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent; the route picks the address
        address = str(probe.getsockname()[0])
        if not address.startswith("127."):
            return address
    for _index, name in socket.if_nameindex():
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe,
        ):
            request = struct.pack("256s", name.encode()[:15])
            address = socket.inet_ntoa(fcntl.ioctl(probe.fileno(), 0x8915, request)[20:24])
            if not address.startswith("127."):
                return address
    return None


class TestProxy:
    async def test_the_system_proxy_carries_the_calls(
        self,
        dotnet: DotNet,
        start_gateway: Callable[..., Awaitable[GatewayProcess]],
        tmp_path: Path,
    ) -> None:
        """http_proxy names a forward proxy, which Mono's system proxy reads as Windows' does
        the machine's proxy settings. Mono goes direct to loopback addresses whatever the
        proxy, so the gateway listens on, and is called by, a non-loopback address."""
        address = non_loopback_address()
        if address is None:
            if CI:
                pytest.fail("the proxy test needs a non-loopback IPv4 address when CI=true")
            pytest.skip("this machine has no non-loopback IPv4 address")
        gateway = await start_gateway(host=address)
        assert gateway.url.startswith(f"http://{address}:")
        async with Relay() as proxy:
            environment = {"http_proxy": proxy.url}
            banks = (await dotnet.scenario("banks", *gateway.account(), env=environment)).step
            post = (
                await dotnet.scenario(
                    "post", f"file={journal(tmp_path)}", *gateway.account(), env=environment
                )
            ).step
            audit = (
                await dotnet.scenario(
                    "audit", "message=via the proxy", *gateway.account(), env=environment
                )
            ).step

        assert banks["isSuccess"] is True, banks
        assert post["isSuccess"] == "true", post
        assert audit["isSuccess"] == "true", audit
        assert [(seen.target, seen.headers["soapaction"]) for seen in proxy.requests] == [
            (f"{gateway.url}/soap/ejournal", f'"urn:fng-gateway:ejournal/{operation}"')
            for operation in ("GetBanks", "PostJournals", "PostAuditMessage")
        ]
