"""An account reaches only the databases granted to it, and a refusal tells nothing more."""

from __future__ import annotations

import uuid

import aiohttp

from tests.conftest import Gateway, Sandbox, add_school
from tests.support import Auth, operation, post_journals_body, sample_journal, soap_call

GET_BANKS = operation("GetBanks", systemIdentifier="TPPCS")


def refusal(answer) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return answer.status, answer.fault_string, answer.fault_code


class TestIsolation:
    async def test_another_schools_key_is_refused_exactly_as_an_unknown_key(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        other = await add_school(
            sandbox, gateway, "Other School", la_number="321", establishment_number="7654"
        )
        mine = gateway.auth
        with_other_key = Auth(mine.username, mine.password, other.database)
        with_unknown_key = Auth(mine.username, mine.password, str(uuid.uuid4()))
        with_bad_password = Auth(mine.username, "not-the-password", mine.database)
        with_unknown_user = Auth("nobody", mine.password, mine.database)
        answers = [
            await soap_call(http, gateway.soap_url, GET_BANKS, auth)
            for auth in (with_other_key, with_unknown_key, with_bad_password, with_unknown_user)
        ]
        assert len({refusal(answer) for answer in answers}) == 1
        assert refusal(answers[0]) == (
            500,
            "AuthenticationException:the credentials or the database key were not accepted",
            "AUTHENTICATION_FAILED",
        )
        # The bodies differ only by request id.
        bodies = {answer.raw.decode().split("<gw:requestId>")[0] for answer in answers}
        assert len(bodies) == 1
        assert (await sandbox.stats())["requests"]["GetBanks"] == 0

    async def test_each_account_posts_to_its_own_school(
        self, gateway: Gateway, sandbox: Sandbox, http: aiohttp.ClientSession
    ) -> None:
        other = await add_school(
            sandbox, gateway, "Other School", la_number="321", establishment_number="7654"
        )
        for auth in (gateway.auth, other):
            answer = await soap_call(
                http, gateway.soap_url, post_journals_body(sample_journal("77")), auth
            )
            assert answer.result().get("isSuccess") == "true"
        posted = await sandbox.journals()
        assert sorted(entry["database_id"] for entry in posted) == [sandbox.demo.database_id, 2]
        forbidden = Auth(other.username, other.password, gateway.auth.database)
        answer = await soap_call(
            http, gateway.soap_url, post_journals_body(sample_journal("78")), forbidden
        )
        assert answer.fault_code == "AUTHENTICATION_FAILED"
        assert len(await sandbox.journals()) == 2

    async def test_a_database_name_is_told_what_a_key_is(
        self, gateway: Gateway, http: aiohttp.ClientSession
    ) -> None:
        """A legacy database name where the partner key goes is told that Database must be the
        partner key GUID, with a right password or a wrong one alike; a key of the right shape
        that is not the school's is the one refusal."""
        for password in (gateway.auth.password, "wrong"):
            answer = await soap_call(
                http, gateway.soap_url, GET_BANKS, Auth(gateway.auth.username, password, "FMS_LIVE")
            )
            assert answer.fault_code == "AUTHENTICATION_FAILED"
            assert answer.fault_string.startswith(
                "AuthenticationException:Database must be the partner key GUID"
            ), answer.fault_string
        answer = await soap_call(
            http,
            gateway.soap_url,
            GET_BANKS,
            Auth(gateway.auth.username, gateway.auth.password, str(uuid.uuid4())),
        )
        assert answer.fault_string == (
            "AuthenticationException:the credentials or the database key were not accepted"
        )
