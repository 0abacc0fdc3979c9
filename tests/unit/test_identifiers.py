"""The registry's address rule (``gateway.tenancy.identifiers.Address``): what it refuses and
why, in words; that it keeps every address it took before that a client can use; and that
``URL_PATTERN``, which the admin API's document states, matches just the addresses it takes."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import pytest
import yarl
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.errors import RegistryError
from gateway.tenancy.identifiers import PORTAL_URL, TOKEN_URL, URL_PATTERN, check

NOT_A_PORT = "is not a port number (1 to 65535)"
NO_HOST = "names no host"
PORT_NOT_A_NUMBER = "has a port that is not a number"
BRACKETS = "has brackets that do not enclose an IPv6 address"
ODD_HOST = "names a host that is neither a host name"


class TestRefused:
    @pytest.mark.parametrize(
        ("url", "words"),
        [
            ("https://x:99999/token", f"the port 99999 {NOT_A_PORT}"),
            ("https://x:65536/token", f"the port 65536 {NOT_A_PORT}"),
            ("https://p.example:0/E.asmx", f"the port 0 {NOT_A_PORT}"),
            ("https://p.example:000/E.asmx", f"the port 0 {NOT_A_PORT}"),
            ("https://[::1]:70000/token", f"the port 70000 {NOT_A_PORT}"),
            ("https://x:abc/token", PORT_NOT_A_NUMBER),
            ("https://x:+1/token", PORT_NOT_A_NUMBER),
            ("https://x:-1/token", PORT_NOT_A_NUMBER),
            ("https://x:1:2/token", PORT_NOT_A_NUMBER),
            ("https://:443/token", NO_HOST),
            ("https://:/token", NO_HOST),
            ("https:///token", NO_HOST),
            ("https://[::1/token", BRACKETS),
            ("https://x]/token", BRACKETS),
            ("https://[]/token", BRACKETS),
            ("https://[:]/token", BRACKETS),
            ("https://[zz::1]/token", BRACKETS),
            ("https://[::1]x/token", ODD_HOST),
            ("https://[v1.x]/token", ODD_HOST),
            ("https://simsid\\example/token", ODD_HOST),
        ],
    )
    def test_an_address_a_client_cannot_use_is_refused_saying_why(
        self, url: str, words: str
    ) -> None:
        """Each address that would fail only when the gateway calls it is refused now, and
        the message says what is wrong, then what to give."""
        for rule in (TOKEN_URL, PORTAL_URL):
            problem = rule.problem(url)
            assert problem is not None and words in problem, (url, problem)
            assert ": give" in problem or "; give" in problem, problem
        assert re.fullmatch(URL_PATTERN, url) is None

    def test_a_refusal_names_the_value_and_the_option(self) -> None:
        """``check`` raises the registry's refusal (exit 1, HTTP 409 from a service) with
        what the value is and where it came from."""
        with pytest.raises(RegistryError) as raised:
            check(TOKEN_URL, "https://simsid.example:99999/t", given_as="--token-url")
        assert raised.value.message.startswith(
            "SIMS ID's token URL (--token-url) is not usable: the port 99999 is not a port "
            "number (1 to 65535)"
        )

    def test_a_port_after_credentials_is_not_echoed(self) -> None:
        """``user:password`` without the ``@`` reads as a host and a port: the refusal does not
        repeat the "port", which is a password."""
        problem = PORTAL_URL.problem("https://hill:s3cret/ws")
        assert problem is not None and PORT_NOT_A_NUMBER in problem
        assert "s3cret" not in problem


class TestKept:
    @pytest.mark.parametrize(
        "url",
        [
            "https://simsid.example/connect/token",
            "http://127.0.0.1:8080/connect/token",
            "https://simsid.example:443/connect/token",
            "https://simsid.example:1/t",
            "https://simsid.example:65535/t",
            "https://simsid.example:0443/t",
            "https://simsid.example:/t",
            "HTTPS://SIMSID.EXAMPLE/T?x=1#y",
            "https://simsid.example",
            "https://simsid.example?x",
            "https://[::1]/t",
            "https://[::1]:8443/t",
            "https://[2001:db8::1]/t",
            "https://[::ffff:192.0.2.1]/t",
            "https://[fe80::1%25eth0]:8443/t",
            "https://host_with_underscore.internal/t",
            "https://xn--bcher-kva.example/t",
            "https://b%C3%BCcher.example/t",
        ],
    )
    def test_an_address_a_client_can_use_is_taken(self, url: str) -> None:
        """What the rule took before and a client can call is still taken, by the rule and by
        the pattern alike; urllib and yarl (aiohttp's URLs) read its host and port."""
        assert TOKEN_URL.problem(url) is None
        assert PORTAL_URL.problem(url) is None
        assert re.fullmatch(URL_PATTERN, url) is not None
        assert urlsplit(url).hostname
        assert yarl.URL(url).host


class TestPatternIsTheRule:
    # The pattern's ^ and $ as JSON Schema reads them (Python's $ would allow a final "\n").
    @given(
        st.from_regex(URL_PATTERN.removeprefix("^").removesuffix("$"), fullmatch=True).filter(
            lambda url: len(url) <= TOKEN_URL.max_length
        )
    )
    @example("http://[1:2:3:4:5:6:7:8]:65535")
    @example("http://[::1.2.3.4]")
    def test_every_address_the_pattern_matches_is_taken_and_usable(self, url: str) -> None:
        """Whatever the document's pattern allows, the rule takes (the admin API answers
        201, not 422, to it), and a client can read its host and port."""
        assert TOKEN_URL.problem(url) is None, url
        parts = urlsplit(url)
        assert parts.hostname
        if parts.port is not None:
            assert 1 <= parts.port <= 65535
        if url.split("://", 1)[1].startswith("["):
            ipaddress.IPv6Address(parts.hostname.replace("%25", "%", 1))
        yarl.URL(url).host  # noqa: B018 - raises if yarl cannot read it

    @given(
        st.text(st.sampled_from(list("hHtTpPsS:/[]@%.x0159:?#\\ a")) | st.characters(), max_size=40)
    )
    @example("https://x:65536")
    @example("https://[::1]x")
    def test_every_address_the_rule_takes_the_pattern_matches(self, text: str) -> None:
        """Whatever the rule takes, the pattern matches: the document refuses nothing the
        API takes."""
        for url in (text, f"https://{text}"):
            if TOKEN_URL.problem(url) is None:
                assert re.fullmatch(URL_PATTERN, url) is not None, url
