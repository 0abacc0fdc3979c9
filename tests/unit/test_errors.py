"""The exception tree drawn at the top of ``gateway.errors`` is the whole tree."""

from __future__ import annotations

import importlib
import pkgutil
import re

import gateway
from gateway import errors
from gateway.errors import GatewayError


def _every_subclass(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _every_subclass(sub)
    return found


class TestTheTree:
    def test_every_gateway_error_is_drawn_where_it_stands(self) -> None:
        """Each subclass of GatewayError, wherever it is defined, is in the drawing, under
        its own base."""
        for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
        drawing = (errors.__doc__ or "").split("\n\n")[2]
        depth = {"GatewayError": (0, -1)}
        for number, line in enumerate(drawing.splitlines()):
            found = re.search(r"── (\w+)", line)
            if found is not None:
                depth[found.group(1)] = (found.start(1), number)
        for cls in _every_subclass(GatewayError):
            assert cls.__name__ in depth, f"{cls.__module__}.{cls.__name__} is not drawn"
            column, number = depth[cls.__name__]
            base = cls.__bases__[0].__name__
            base_column, base_number = depth[base]
            assert base_column < column and base_number < number, (cls.__name__, base)
