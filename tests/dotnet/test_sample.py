"""Seed 001's sample program, switched from FMS to the gateway the way a payment system's
developer does it: the four values given to the constructor change, nothing else."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.dotnet.conftest import JOURNAL, LIBRARY, DotNet, GatewayProcess

pytestmark = pytest.mark.dotnet


def with_values(source: str, values: dict[str, str]) -> str:
    """The sample with the right-hand side of ``string _name = …;`` replaced, one line each."""
    for name, value in values.items():
        line = re.compile(rf'(string {name} = )"[^"\n]*";')
        source, count = line.subn(lambda match, value=value: f'{match[1]}"{value}";', source)
        assert count == 1, name
    return source


class TestSample:
    async def test_the_documentation_sample_posts_through_the_gateway(
        self, dotnet: DotNet, gateway: GatewayProcess, tmp_path: Path
    ) -> None:
        sample = tmp_path / "Sample.cs"
        sample.write_text(
            with_values(
                (LIBRARY / "samples" / "Sample.cs").read_text(),
                {
                    "_server": gateway.url,
                    "_database": gateway.database_key,
                    "_username": gateway.info["account"]["username"],
                    "_password": gateway.info["account"]["password"],
                },
            )
        )
        await dotnet.compile(sample, tmp_path / "Sample.exe")
        shutil.copy(JOURNAL, tmp_path / "PostJournal.xml")

        run = await dotnet.run(tmp_path / "Sample.exe", cwd=tmp_path)

        assert run.returncode == 0, run
        lines = run.stdout.splitlines()
        # The banks, read by XPath (/Request/Banks/Bank) as a payment system reads them.
        assert lines[:4] == [
            "GetBanks isSuccess: True",
            'Bank BK1 lastOrderRowVersion="" lastSettlementRowVersion=""',
            'Bank BK2 lastOrderRowVersion="" lastSettlementRowVersion=""',
            'Bank BK3 lastOrderRowVersion="" lastSettlementRowVersion=""',
        ]
        assert lines[4].startswith('PostJournals: <JournalResult isSuccess="true"'), lines
        assert lines[5] == 'PostAuditMessage: <AuditResult isSuccess="true" />'
        assert await gateway.submissions() == ["0071"]
        assert await gateway.audit_messages() == ["Journal 0071 posted by the sample program"]

        banks = (await dotnet.scenario("banks", *gateway.account())).step
        assert banks["isSuccess"] is True
        assert banks["banks"] == "BK1:1:1,BK2::,BK3::"
        assert banks["xml"].startswith('<?xml version="1.0" encoding="iso-8859-1"?><Request>')
