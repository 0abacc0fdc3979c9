"""The schema registry: every XSD compiled once, at start-up, never per request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gateway.errors import ConfigurationError


def shipped_schemas_dir() -> Path:
    """Where the schemas shipped with the gateway live, installed or in a source tree."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_schemas", package.parent / "schemas"):
        if candidate.is_dir():
            return candidate
    raise ConfigurationError("the gateway's schemas directory is missing from this install")


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class SchemaRegistry:
    """Compiled schemas by name (a path relative to the schemas directory)."""

    def __init__(
        self, root: Path, names: Iterable[str], overrides: Mapping[str, Path | None] = {}
    ) -> None:
        """``overrides`` replace shipped schemas by name (an operator's official XSDs)."""
        self._root = root
        self._schemas: dict[str, etree.XMLSchema] = {}
        self._namespaces: dict[str, str | None] = {}
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        for name in names:
            path = overrides.get(name) or root / name
            try:
                document = etree.parse(str(path), parser)
                self._schemas[name] = etree.XMLSchema(document)
            except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
                raise ConfigurationError(f"schema {name} could not be loaded: {exc}") from None
            self._namespaces[name] = document.getroot().get("targetNamespace") or None

    def __contains__(self, name: str) -> bool:
        return name in self._schemas

    def target_namespace(self, name: str) -> str | None:
        """The namespace the schema's documents are in (its ``targetNamespace``), if any."""
        return self._namespaces[name]

    def schema(self, name: str) -> etree.XMLSchema:
        """The compiled schema, for validating while a document is streamed."""
        return self._schemas[name]

    def issues(self, name: str, element: etree._Element, limit: int = 50) -> list[SchemaIssue]:
        """Validate ``element`` as a document root; return at most ``limit`` issues."""
        schema = self._schemas[name]
        if schema.validate(element):
            return []
        return [
            SchemaIssue(line=entry.line, message=entry.message)
            for entry in list(schema.error_log)[:limit]  # type: ignore[call-overload]
        ]
