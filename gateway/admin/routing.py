"""The admin API's route table: one entry per operation, read from its handler's signature.

A handler is ``async def name(ctx, *, path=..., query=..., body=...) -> Result``: the types of
``path`` and ``query`` (pydantic models), of ``body`` (a pydantic model, or :class:`CsvText`)
and of the result are what the request is validated against, what the response is serialised
with, and what the OpenAPI document describes, so the three cannot drift apart. The first line
of its docstring is the operation's summary, the rest its description.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar, Union, get_args, get_origin, get_type_hints

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from gateway.admin.problems import BodyTooLarge, InvalidInput, UnsupportedMediaType
from gateway.errors import MalformedRequest

Handler = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=Handler)

_PLACEHOLDER: Final = re.compile(r"\{(\w+)\}")
_CHUNK: Final = 64 * 1024


class CsvText(str):
    """A ``text/csv`` request body, decoded from UTF-8."""

    __slots__ = ()


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused once it passes ``limit`` bytes (declared or not)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class JsonBody:
    model: type[BaseModel]

    media_type: ClassVar[str] = "application/json"

    @property
    def required(self) -> bool:
        """A body whose every field has a default may be left out."""
        return any(item.is_required() for item in self.model.model_fields.values())

    async def read(self, request: web.Request, limit: int) -> BaseModel:
        raw = await read_body(request, limit)
        if not raw.strip():
            if self.required:
                raise MalformedRequest("the request needs a JSON body")
            raw = b"{}"
        elif request.content_type != "application/json" and not request.content_type.endswith(
            "+json"
        ):
            raise UnsupportedMediaType("the body must be application/json")
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            if any(item["type"] == "json_invalid" for item in exc.errors()):
                raise MalformedRequest("the body is not valid JSON") from None
            raise InvalidInput.from_validation("body", exc) from None


@dataclass(frozen=True, slots=True)
class CsvBody:
    media_type: ClassVar[str] = "text/csv"
    required: ClassVar[bool] = True

    async def read(self, request: web.Request, limit: int) -> CsvText:
        raw = await read_body(request, limit)
        if request.content_type != "text/csv":
            raise UnsupportedMediaType("the body must be text/csv")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                "the CSV file is not UTF-8",
                [{"loc": ["body"], "msg": f"not UTF-8 at byte {exc.start}", "type": "encoding"}],
            ) from None
        if "\x00" in text:
            raise InvalidInput(
                "the CSV file holds a NUL character",
                [{"loc": ["body"], "msg": "a NUL character", "type": "encoding"}],
            )
        return CsvText(text)


Body = JsonBody | CsvBody


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    tag: str
    status: int
    result: TypeAdapter[Any]
    result_type: Any
    path_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    body: Body | None = None
    #: Route-specific errors, by status, with what they mean here.
    errors: Mapping[int, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.handler) or self.name).split("\n", 1)[0]

    @property
    def description(self) -> str | None:
        parts = (inspect.getdoc(self.handler) or "").split("\n", 1)
        return (parts[1].strip() or None) if len(parts) == 2 else None

    async def __call__(self, context: Any, request: web.Request, limit: int) -> web.Response:
        inputs: dict[str, Any] = {}
        if self.path_model is not None:
            inputs["path"] = _parameters(self.path_model, dict(request.match_info), "path")
        if self.query_model is not None:
            query = {key: request.query.getone(key) for key in request.query}
            inputs["query"] = _parameters(self.query_model, query, "query")
        if self.body is not None:
            inputs["body"] = await self.body.read(request, limit)
        result = await self.handler(context, **inputs)
        return web.Response(
            status=self.status, body=self.result.dump_json(result), content_type="application/json"
        )


def _parameters(model: type[BaseModel], values: dict[str, str], where: str) -> BaseModel:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput.from_validation(where, exc) from None


def _optional(hint: Any) -> Any:
    """``T`` from ``T | None``."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


class RouteTable:
    """The operations, in the order they are declared (the OpenAPI document keeps it), and
    the tags they are grouped under, each with its description."""

    def __init__(self, *, tags: Mapping[str, str]) -> None:
        self.endpoints: list[Endpoint] = []
        self.tags = dict(tags)

    def route(
        self,
        method: str,
        path: str,
        *,
        tag: str,
        status: int = 200,
        errors: Mapping[int, str] | None = None,
    ) -> Callable[[F], F]:
        if tag not in self.tags:
            raise TypeError(f"{method} {path}: the tag {tag!r} is not the table's")

        def register(handler: F) -> F:
            hints = get_type_hints(handler)
            result_type = hints.pop("return")
            hints.pop("ctx", None)
            unknown = set(hints) - {"path", "query", "body"}
            if unknown:
                raise TypeError(f"{handler.__name__}: unknown inputs {sorted(unknown)}")
            path_model = hints.get("path")
            placeholders = set(_PLACEHOLDER.findall(path))
            declared = set(path_model.model_fields) if path_model is not None else set()
            if placeholders != declared:
                raise TypeError(f"{handler.__name__}: {path} does not match its path model")
            body_type = _optional(hints["body"]) if "body" in hints else None
            body: Body | None = None
            if body_type is CsvText:
                body = CsvBody()
            elif body_type is not None:
                body = JsonBody(body_type)
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=handler,
                    tag=tag,
                    status=status,
                    result=TypeAdapter(result_type),
                    result_type=result_type,
                    path_model=path_model,
                    query_model=hints.get("query"),
                    body=body,
                    errors=dict(errors or {}),
                )
            )
            return handler

        return register
