"""Exactly once without the caller's help: a legacy payment system never retried, so the
library sends a call whose answer was lost again, and the gateway's ledger makes that safe.
Each test posts seed 001's journal (submission 0071) and checks FNG holds it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dotnet.conftest import QUICK, DotNet, GatewayProcess, journal
from tests.dotnet.relay import Relay

pytestmark = pytest.mark.dotnet


class TestLostAnswers:
    async def test_fng_commits_and_drops_the_connection(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """FNG posts the journal but its answer never reaches the gateway: the gateway says
        OUTCOME_UNKNOWN, the library sends the journal again, and the gateway settles with
        FNG (GetBanks) that it landed instead of posting it twice."""
        await gateway.faults(
            {"target": "fng", "kind": "drop_after", "path": "PostJournals", "count": 1}
        )

        post = (
            await dotnet.scenario("post", f"file={journal(tmp_path)}", *gateway.account(), *QUICK)
        ).step

        assert post.get("exception") is None, post
        assert post["isSuccess"] == "true"
        assert post["errors"] == ""
        assert post["replayed"] == "true"  # the earlier attempt landed: nothing posted now
        assert await gateway.submissions() == ["0071"]

    async def test_the_connection_to_the_gateway_is_lost_after_the_request(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """Between the library and the gateway (an ingress, a flaky network), the first
        request reaches the gateway, which posts the journal, and the answer is lost. The
        library sends the same bytes again and gets the gateway's recorded result."""
        async with Relay(gateway.url, actions=("swallow",)) as relay:
            post = (
                await dotnet.scenario(
                    "post", f"file={journal(tmp_path)}", *gateway.account(relay.url), *QUICK
                )
            ).step
            assert post.get("exception") is None, post
            assert post["isSuccess"] == "true"
            assert post["replayed"] == "true"  # answered from the ledger, not posted again
            assert await gateway.submissions() == ["0071"]
            first, second = relay.requests
            assert first.body == second.body  # the same bytes, however often it is sent
            assert first.headers["x-request-id"] == second.headers["x-request-id"]

            # An audit note is not idempotent: once it may have arrived it is not sent again.
            relay.actions.append("swallow")
            audit = (
                await dotnet.scenario(
                    "audit", "message=Export 42 posted", *gateway.account(relay.url), *QUICK
                )
            ).step

        assert audit["code"] == "GATEWAY_UNREACHABLE"
        assert audit["attempts"] == 1
        assert "not sent again" in audit["message"]
        assert len(relay.requests) == 3
        assert await gateway.audit_messages() == ["Export 42 posted"]

    async def test_a_proxy_answers_bad_gateway(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """An ingress in front of the gateway answers 502 (an HTML page, no SOAP fault) once."""
        async with Relay(gateway.url, actions=("bad_gateway",)) as relay:
            post = (
                await dotnet.scenario(
                    "post", f"file={journal(tmp_path)}", *gateway.account(relay.url), *QUICK
                )
            ).step

        assert post.get("exception") is None, post
        assert post["isSuccess"] == "true"
        assert post["replayed"] == ""  # the 502 came before the gateway: this was the post
        assert await gateway.submissions() == ["0071"]
        first, second = relay.requests
        assert first.body == second.body
        assert first.headers["x-request-id"] == second.headers["x-request-id"]
        assert first.headers["soapaction"] == '"urn:fng-gateway:ejournal/PostJournals"'
        assert first.headers["user-agent"].startswith("CSFMSEJournalInterface/1.0.0 ")


class TestRetriesRunOut:
    async def test_the_caller_is_told_to_send_the_same_submission_again(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """FNG drops every PostJournals: each attempt's outcome is unknown to the gateway. The
        library gives up after MaxAttempts with the gateway's code; sent again once FNG is
        back, the journal is posted, once."""
        await gateway.faults({"target": "fng", "kind": "drop_before", "path": "PostJournals"})
        path = journal(tmp_path)

        failed = (await dotnet.scenario("post", f"file={path}", *gateway.account(), *QUICK)).step

        assert failed["code"] == "OUTCOME_UNKNOWN", failed
        assert failed["exceptionType"] == "OutcomeUnknownException"
        assert failed["attempts"] == 4
        assert failed["httpStatus"] == 500
        assert "send the same submission again later" in failed["message"]
        assert await gateway.submissions() == []

        await gateway.clear_faults()
        post = (await dotnet.scenario("post", f"file={path}", *gateway.account(), *QUICK)).step

        assert post["isSuccess"] == "true", post
        assert post["replayed"] == ""  # settled as not landed, then posted
        assert await gateway.submissions() == ["0071"]


class TestRefusedJournals:
    async def test_a_stale_row_version_is_a_result_not_an_exception(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        """FMS answered a journal that breaks a rule with isSuccess="false" and its errors;
        so does the library. The journal is read from an XmlElement and an XPathDocument."""
        first = (
            await dotnet.scenario(
                "post", f"file={journal(tmp_path)}", "as=element", *gateway.account()
            )
        ).step
        assert first["isSuccess"] == "true", first

        # 0072 continues from row version 0 again, though FNG is at 1 in both sections.
        stale = journal(tmp_path, "0072", row_version=1)
        refused = (
            await dotnet.scenario("post", f"file={stale}", "as=xpath", *gateway.account())
        ).step

        assert refused.get("exception") is None, refused
        assert refused["isSuccess"] == "false"
        assert set(refused["errors"].split(",")) == {"ROW_VERSION"}
        assert refused["xml"].startswith('<JournalResult isSuccess="false"')
        assert await gateway.submissions() == ["0071"]


async def posted_descriptions(
    dotnet: DotNet, gateway: GatewayProcess, path: Path, kind: str, description: str
) -> list[str]:
    """Seed 001's journal at ``path`` with its first description written as ``description``
    (markup), posted as a ``kind`` object: the descriptions FNG received, sorted."""
    text = path.read_text().replace(
        'productReference="WATBTL1" description="Description"',
        f'productReference="WATBTL1" description="{description}"',
        1,
    )
    path.write_text(text)
    post = (await dotnet.scenario("post", f"file={path}", f"as={kind}", *gateway.account())).step
    assert post["isSuccess"] == "true", post
    (posted,) = await gateway.control("GET", "journals")
    return sorted(line["attributes"]["description"] for line in posted["lines"])


class TestJournalsArriveUnaltered:
    @pytest.mark.parametrize("kind", ["document", "element", "xpath", "navigator"])
    async def test_tabs_and_line_breaks_in_attributes_reach_fng(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path, kind: str
    ) -> None:
        """A description holding a tab and CR LF (character references in the file, so the
        loaded journal holds the characters themselves). Written raw into an attribute, the
        gateway's parser would turn each into a space (attribute-value normalisation); the
        library writes them as references, so FNG gets the value the caller had."""
        descriptions = await posted_descriptions(
            dotnet, gateway, journal(tmp_path), kind, "tab&#x9;here&#xD;&#xA;nl"
        )
        assert descriptions == ["Description", "tab\there\r\nnl"], descriptions

    @pytest.mark.parametrize("kind", ["document", "element"])
    async def test_entities_a_doctype_declares_are_sent_as_their_text(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path, kind: str
    ) -> None:
        """An XmlDocument loaded from a file whose DOCTYPE declares an entity: the caller's
        document holds the entity's text, and so does the journal FNG gets (the gateway
        refuses any DOCTYPE, so none is sent)."""
        path = journal(tmp_path)
        path.write_text(
            path.read_text().replace(
                "<ControlAccounts>",
                '<!DOCTYPE ControlAccounts [<!ENTITY school "Demo school">]>\n<ControlAccounts>',
                1,
            )
        )
        descriptions = await posted_descriptions(dotnet, gateway, path, kind, "&school; water")
        assert descriptions == ["Demo school water", "Description"], descriptions
