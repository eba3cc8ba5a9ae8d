"""Helpers of the workspace pages' tests: a page's form controls and field errors, and
a reader of the pages' live streams (Server-Sent Events of HTML fragments)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

STREAM_WAIT = 30.0
"""The bound on waiting for a stream to say something."""


@dataclass
class Control:
    """A form control: its tag, attributes, text (a textarea's, an option's)."""

    tag: str
    attrs: dict[str, str]
    text: str = ""
    options: list[Control] = field(default_factory=list["Control"])

    def has(self, name: str) -> bool:
        return name in self.attrs


class _Controls(HTMLParser):
    """Every named control of a page, and the errors listed in each ``data-field``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: dict[str, list[Control]] = {}
        self.errors: dict[str, list[str]] = {}
        self._open: Control | None = None
        self._select: Control | None = None
        self._fields: list[tuple[str, int]] = []  # (data-field, div depth)
        self._depth = 0
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "div":
            self._depth += 1
            if "data-field" in values:
                self._fields.append((values["data-field"], self._depth))
        if tag == "ul" and "field-errors" in values.get("class", ""):
            self._in_error = True
        if tag == "li" and self._in_error and self._fields:
            self.errors.setdefault(self._fields[-1][0], []).append("")
        control = Control(tag, values)
        if tag == "option" and self._select is not None:
            self._select.options.append(control)
            self._open = control
        elif tag in ("input", "textarea", "select") and "name" in values:
            self.controls.setdefault(values["name"], []).append(control)
            if tag == "select":
                self._select = control
            if tag == "textarea":
                self._open = control

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self._fields and self._fields[-1][1] == self._depth:
                self._fields.pop()
            self._depth -= 1
        if tag == "ul":
            self._in_error = False
        if tag == "select":
            self._select = None
        if tag in ("option", "textarea"):
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.text += data
        if self._in_error and self._fields:
            errors = self.errors.get(self._fields[-1][0])
            if errors:
                errors[-1] += data


@dataclass
class Form:
    controls: dict[str, list[Control]]
    errors: dict[str, list[str]]
    """Per ``data-field`` (``name``, ``preset``, ``param.<name>``): its error texts."""

    def one(self, name: str) -> Control:
        found = self.controls.get(name, [])
        assert len(found) == 1, f"{name}: {found}"
        return found[0]


def parse_form(html: str) -> Form:
    parser = _Controls()
    parser.feed(html)
    return Form(parser.controls, parser.errors)


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: str
    id: str


PING = Event("", "", "")
"""What :func:`sse_events` yields for a comment (a keep-alive ping)."""


def sse_events(response: httpx.Response) -> Iterator[Event]:
    """The events of a ``text/event-stream`` response, as they arrive (and a
    :data:`PING` for each comment, so a reader can check its deadline)."""
    name, data, last_id = "message", list[str](), ""
    for line in response.iter_lines():
        if line == "":
            if data:
                yield Event(name, "\n".join(data), last_id)
            elif name != "message":
                yield Event(name, "", last_id)
            name, data = "message", []
        elif line.startswith(":"):
            yield PING
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
            elif key == "id":
                last_id = value


class Stream:
    """A live stream being read: wait for the event that satisfies a condition."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self._events = sse_events(response)
        self.seen: list[Event] = []
        self.ended = False

    def until(self, check: Callable[[Event], bool], what: str) -> Event:
        deadline = time.monotonic() + STREAM_WAIT
        for event in self._events:
            if event is not PING:
                self.seen.append(event)
                if check(event):
                    return event
            assert time.monotonic() < deadline, f"no {what} within {STREAM_WAIT}s: {self.seen}"
        self.ended = True
        raise AssertionError(f"the stream ended before {what}: {self.seen}")

    def rest(self) -> list[Event]:
        """Everything until the stream ends (the server ends it)."""
        rest = [e for e in self._events if e is not PING]
        self.seen += rest
        self.ended = True
        return rest
