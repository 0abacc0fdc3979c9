"""How schools and suppliers are identified, written once: an LA number, an establishment
number, a DUNS number (or a 13-digit GLN), a language and a currency code.

The registry service, the bulk import and the admin API's models all check by these; the
annotated types carry them into pydantic.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import StringConstraints

LA_NUMBER: Final = re.compile(r"[0-9]{3}")
ESTABLISHMENT_NUMBER: Final = re.compile(r"[0-9]{4}")
#: A DUNS number has 9 digits; a GLN, which FMS takes in its place, 13.
DUNS: Final = re.compile(r"[0-9]{9}|[0-9]{13}")
LANGUAGE: Final = re.compile(r"[A-Za-z]{2}(-[A-Za-z]{2})?")
CURRENCY: Final = re.compile(r"[A-Z]{3}")


def _whole(pattern: re.Pattern[str]) -> StringConstraints:
    """The pattern as pydantic applies it: to the whole value."""
    return StringConstraints(pattern=f"^(?:{pattern.pattern})$")


LaNumber = Annotated[str, _whole(LA_NUMBER)]
EstablishmentNumber = Annotated[str, _whole(ESTABLISHMENT_NUMBER)]
Duns = Annotated[str, _whole(DUNS)]
Language = Annotated[str, _whole(LANGUAGE)]
Currency = Annotated[str, _whole(CURRENCY)]
