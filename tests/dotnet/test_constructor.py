"""The constructor's four values, the optional properties and the exception type, checked by
a C# program without a gateway: a recording proxy (set with the Proxy property) shows where
requests would go, and refuses them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dotnet.conftest import DotNet

pytestmark = pytest.mark.dotnet

ADDRESS = (
    "server must be the gateway's address, https://host[:port][/prefix] "
    "(for example https://gateway.example.org); the value given "
)


class TestConstructor:
    async def test_values_properties_and_exception(self, dotnet: DotNet) -> None:
        steps = (await dotnet.scenario("ctor")).steps
        servers: dict[str, dict[str, Any]] = {
            step["server"]: step for step in steps if step["step"] == "server"
        }

        # Where the calls go: a host name alone means https; http only when written out;
        # a trailing slash, the service's own URL and ?wsdl are accepted.
        assert {server: step.get("url") for server, step in servers.items() if "url" in step} == {
            "gateway.example.org": "https://gateway.example.org/soap/ejournal",
            "gateway.example.org:8443": "https://gateway.example.org:8443/soap/ejournal",
            "GATEWAY.example.org/": "https://gateway.example.org/soap/ejournal",
            "https://gateway.example.org/fng/": "https://gateway.example.org/fng/soap/ejournal",
            "https://gateway.example.org/fng/soap/ejournal?wsdl": (
                "https://gateway.example.org/fng/soap/ejournal"
            ),
            "http://127.0.0.1:8080/soap/ejournal/": "http://127.0.0.1:8080/soap/ejournal",
            "http://[::1]:8080": "http://[::1]:8080/soap/ejournal",
        }
        # FMS's SQL Server instance, connection strings, other schemes: refused, saying why.
        refused = [server for server, step in servers.items() if "error" in step]
        assert refused == [
            "SQL01\\FMS",
            ".\\SQLEXPRESS",
            "SQL01,1433",
            "tcp:SQL01,1433",
            "Data Source=SQL01;Initial Catalog=FMS",
            "ftp://gateway.example.org",
            "https://gateway.example.org/?x=1",
            "",
            "Server=sql01;Database=FMS;User Id=sa;Password=S3cret!;",
            "https://user:S3cret@gateway.example.org",
            "user:S3cret@gateway.example.org",
            "https://gateway.example.org/#S3cret",
            "https://gateway.example.org/?password=S3cret",
            "S3cret:password",
            "http:/127.0.0.1:8080",
            "https//gateway.example.org",
        ]
        for server in refused:
            step = servers[server]
            assert (step["error"], step["param"]) == ("ArgumentException", "server")
            assert step["message"].startswith(ADDRESS), step
            # The refused value is never repeated: it may be a connection string or a URL
            # with a password in it.
            if server:
                assert server not in step["message"], step
            assert "S3cret" not in step["message"], step
        # What is wrong with it is said instead.
        problems = {server: servers[server]["message"][len(ADDRESS) :] for server in refused}
        for typo in ("http:/127.0.0.1:8080", "https//gateway.example.org"):
            assert problems[typo].startswith("starts with a mistyped scheme"), problems[typo]
        assert problems["SQL01\\FMS"].startswith("contains '\\' like an SQL Server instance name")
        assert problems["SQL01,1433"].startswith("contains ',' like an SQL Server address")
        assert problems["Data Source=SQL01;Initial Catalog=FMS"].startswith(
            "contains ';' like a connection string"
        )
        assert problems["Server=sql01;Database=FMS;User Id=sa;Password=S3cret!;"].startswith(
            "contains ';' like a connection string"
        )
        assert problems["https://user:S3cret@gateway.example.org"].startswith(
            "carries a user name and password"
        )
        assert problems["user:S3cret@gateway.example.org"].startswith("carries a user name")
        assert problems["ftp://gateway.example.org"].startswith("does not start with https://")
        assert problems["https://gateway.example.org/?x=1"].startswith("has a query string")
        assert problems[""].startswith("is empty")

        nulls = [step["param"] for step in steps if step["step"] == "null"]
        assert nulls == ["server", "database", "username", "password"]
        assert all(
            step["error"] == "ArgumentNullException" for step in steps if step["step"] == "null"
        )

        (defaults,) = [step for step in steps if step["step"] == "defaults"]
        assert defaults == {
            "step": "defaults",
            "timeout_ms": 100_000,
            "max_attempts": 8,
            "retry_delay_ms": 1_000,
            "max_retry_delay_ms": 30_000,
            "call_timeout_ms": 300_000,
            "connection_limit": 16,
            "proxy": True,
        }
        (setters,) = [step for step in steps if step["step"] == "setters"]
        assert setters == {
            "step": "setters",
            "timeout_zero": "ArgumentOutOfRangeException",
            "timeout_huge": "ArgumentOutOfRangeException",
            "call_timeout_zero": "ArgumentOutOfRangeException",
            "call_timeout_huge": "ArgumentOutOfRangeException",
            "connection_limit_zero": "ArgumentOutOfRangeException",
            "connection_limit_one": None,
            "attempts_zero": "ArgumentOutOfRangeException",
            "delay_negative": "ArgumentOutOfRangeException",
            "max_delay_negative": "ArgumentOutOfRangeException",
            "max_delay_huge": "ArgumentOutOfRangeException",
            "attempts_one": None,
            "delay_zero": None,
            "null_journal": "ArgumentNullException",
            "null_message": "ArgumentNullException",
            "empty_journal": "ArgumentException",
        }

        # The user's credentials go to the system proxy only when the application asks for
        # them, as with HttpWebRequest's own default (<defaultProxy useDefaultCredentials=
        # "false">): a proxy named by WPAD may be anyone's.
        (proxy,) = [step for step in steps if step["step"] == "proxy"]
        assert proxy == {"step": "proxy", "default_credentials": False, "opted_in": True}

        # GatewayException survives serialization (across AppDomains, remoting, logs).
        (serialized,) = [step for step in steps if step["step"] == "serialized"]
        assert serialized == {
            "step": "serialized",
            "message": "the message",
            "code": "OUTCOME_UNKNOWN",
            "requestId": "abc123",
            "exceptionType": "OutcomeUnknownException",
            "httpStatus": 500,
            "attempts": 3,
        }
