"""The admin API's schools, one at a time or from a CSV file."""

from __future__ import annotations

import json
import uuid

from tests.integration.admin_api import GUID, Admin


class TestSchools:
    """Schools are added and listed, or imported from a CSV file."""

    async def test_a_school_is_listed_with_its_defaults_and_added_once(self, admin: Admin) -> None:
        """A school added is listed with its defaults; the same DfE number twice is a
        conflict."""
        school_id = await admin.post(
            "/schools",
            {
                "name": "Hill Primary",
                "la_number": "123",
                "establishment_number": "0456",
                "duns": "123456789",
            },
            expect=201,
        )
        listed = {item["id"]: item for item in await admin.get("/schools")}
        school = listed[school_id["id"]]
        assert (school["duns"], school["language"], school["currency"]) == (
            "123456789",
            "en",
            "GBP",
        )
        body = {"name": "Again", "la_number": "123", "establishment_number": "0456"}
        problem = await admin.post("/schools", body, expect=409)
        assert problem["code"] == "CONFLICT"

    async def test_a_csv_file_imports_schools_and_databases_or_nothing(self, admin: Admin) -> None:
        """A CSV file creates schools and databases; generated partner keys come back once;
        a wrong file is refused with its problems by line, and nothing is written."""
        await admin.post(
            "/vendors",
            {
                "name": "Importer",
                "token_url": "https://simsid.example/connect/token",
                "client_id": "importer",
                "secret": "s",
            },
            expect=201,
        )
        header = "name,la_number,establishment_number,duns,language,currency,database,vendor,"
        csv = (
            f"{header}fng_key,partner_key\n"
            f"Oak Primary,201,1001,,,,Public funds,Importer,{uuid.uuid4()},\n"
            f"Oak Primary,201,1001,,,,School fund,Importer,{uuid.uuid4()},{uuid.uuid4()}\n"
        )
        headers = {"Content-Type": "text/csv"}
        imported = await admin.post("/schools/import", data=csv.encode(), headers=headers)
        assert imported["rows"] == 2
        assert imported["schools"]["created"] == 1
        assert imported["databases"]["created"] == 2
        [generated] = imported["generated_keys"]
        assert generated["database"] == "Public funds" and uuid.UUID(generated["partner_key"])
        assert generated["partner_key"] not in json.dumps(await admin.get("/databases"))

        wrong = f"{header}fng_key,partner_key\nElm,20,1002,,,,Public funds,Nobody,{GUID},\n"
        problem = await admin.post(
            "/schools/import", data=wrong.encode(), headers=headers, expect=422
        )
        [error] = problem["errors"]
        assert error["loc"] == ["body", "line", 2] and "LA number" in error["msg"]
        again = await admin.post("/schools/import", data=csv.encode(), headers=headers)
        assert again["databases"] == {"created": 0, "updated": 0, "unchanged": 2}
        keyless = f"{header}fng_key,partner_key\nElm,202,1002,,,,Public funds,Importer,{GUID},\n"
        refused = await admin.post(
            "/schools/import?generate_keys=false",
            data=keyless.encode(),
            headers=headers,
            expect=422,
        )
        assert "partner_key is empty" in refused["errors"][0]["msg"]
        await admin.post(
            "/schools/import", data=csv.encode(), headers={"Content-Type": "text/plain"}, expect=415
        )
        await admin.post("/schools/import", data=b"\xff\xfe", headers=headers, expect=422)
