"""PHP's SoapClient, a third SOAP stack written independently of zeep and suds, uses the
E-Journal service in SOAP 1.1 and 1.2 the way PHP integrators do: the journal handed over as
``new SoapVar($xml, XSD_ANYXML)``, as the ``xmlData`` parameter (PHP sends the journal inside
``PostJournals`` without the ``xmlData`` element) or as the call's only argument (PHP sends
the journal alone as the SOAP body, the operation named by the SOAPAction); see
tests/interop/php/ejournal.php."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import CI, Gateway, Sandbox
from tests.support import sample_journal, strip_declaration

SCRIPT = Path(__file__).parent / "php" / "ejournal.php"


@pytest.fixture(scope="session")
def php() -> str:
    """PHP with its soap extension (Debian: php-cli php-soap)."""
    binary = shutil.which("php")
    ready = (
        binary is not None
        and "soap"
        in subprocess.run(
            [binary, "-m"], capture_output=True, text=True, check=False
        ).stdout.split()
    )
    if not ready:
        if CI:
            pytest.fail("PHP with its soap extension is required when CI=true")
        pytest.skip("PHP with its soap extension (php-cli php-soap) is not installed")
    assert binary is not None
    return binary


async def run_php(php: str, tmp_path: Path, **config: str) -> dict[str, Any]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    done = await asyncio.to_thread(
        subprocess.run, [php, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def config(
    gateway: Gateway, version: str, shape: str = "parameter", **overrides: str
) -> dict[str, str]:
    return {
        "wsdl": f"{gateway.soap_url}?wsdl",
        "version": version,
        "shape": shape,
        "username": gateway.auth.username,
        "password": gateway.auth.password,
        "database": gateway.auth.database,
        "system": "TPPCS",
        "journal": strip_declaration(sample_journal("0071")),
        "message": "journal 0071 posted from PHP",
        **overrides,
    }


class TestPhpSoapClient:
    @pytest.mark.parametrize("shape", ["parameter", "whole"])
    @pytest.mark.parametrize("version", ["1.1", "1.2"])
    async def test_get_banks_post_journals_post_audit_message(
        self,
        php: str,
        gateway: Gateway,
        sandbox: Sandbox,
        tmp_path: Path,
        version: str,
        shape: str,
    ) -> None:
        out = await run_php(php, tmp_path, **config(gateway, version, shape))
        assert "fault" not in out, out
        banks = etree.fromstring(out["banks"].encode()).xpath("/Request/Banks/Bank")
        assert out["isSuccess"] is True
        assert [bank.get("externalReference") for bank in banks] == ["BK1", "BK2", "BK3"]
        # PHP sent the journal without xmlData: inside PostJournals, or as the whole body.
        request = etree.fromstring(out["request"].encode())
        body = request[-1]
        if shape == "whole":
            assert [etree.QName(e).localname for e in body] == ["ControlAccounts"]
        else:
            assert [etree.QName(e).localname for e in body] == ["PostJournals"]
            assert [etree.QName(e).localname for e in body[0]] == ["ControlAccounts"]
        journal = etree.fromstring(out["journal"].encode())
        assert (journal.tag, journal.get("isSuccess")) == ("JournalResult", "true")
        assert etree.fromstring(out["audit"].encode()).get("isSuccess") == "true"
        assert [j["submission_id"] for j in await sandbox.journals()] == ["0071"]
        assert (await sandbox.stats())["audit_messages"] == 1

    @pytest.mark.parametrize("version", ["1.1", "1.2"])
    async def test_a_refusal_is_a_soap_fault_php_reads(
        self, php: str, gateway: Gateway, sandbox: Sandbox, tmp_path: Path, version: str
    ) -> None:
        out = await run_php(php, tmp_path, **config(gateway, version, password="wrong"))
        assert out["fault"]["code"] == "AUTHENTICATION_FAILED"
        assert out["fault"]["string"].startswith("AuthenticationException:")
        assert (await sandbox.stats())["requests"]["GetBanks"] == 0
