"""Typed names for the few app-wide objects hot paths read from the app's state.

Routes reach app-wide objects by dependency injection (a name per object). The data API's
handlers skip injection on their hot path and read the app's state instead; an ``AppKey``
gives that read its type, and is declared next to the type it names, so the platform
fills the state with the same keys the areas read.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class AppKey(Generic[T]):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def of(self, connection: Any) -> T:
        """The object, from a request's (or socket's) app state."""
        return cast(T, connection.app.state[self.name])
