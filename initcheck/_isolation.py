"""Run calls in a child Python process of their own, so that what they do to their process stays there.

An initializer or a model that ends its process (``os._exit``, a segfault) or never returns (a loop
inside JAX tracing, which no thread can interrupt) would otherwise take the whole session with it:
``Isolated.call`` turns the first into ``Crashed`` and the second, after its time limit, into
``Hung``; the child is then killed and a fresh one started for the next call. A child that was
left with a call still running on an abandoned thread (``_sampler.call_with_timeout``) is replaced
too, so that nothing keeps burning a core after its verdict.

The parent and the child talk over two pipes in length-prefixed pickles; the child inherits the
parent's ``sys.path`` and working folder, and starts by running ``start`` (the session's set-up).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from initcheck import _sampler as sampler

_HEADER = struct.Struct("!Q")
Call = tuple[str, str, tuple]  # (module, function, args): the function is called with progress= too


class Crashed(RuntimeError):
    """The child process ended while it ran the call."""


class Hung(RuntimeError):
    """The call gave no sign of progress within its time limit; the child was killed."""


class Raised(Exception):
    """The call raised in the child: its exception's type name, message and formatted traceback."""

    def __init__(self, kind: str, message: str, trace: str):
        super().__init__(message)
        self.kind, self.trace = kind, trace


def described(exc: BaseException) -> str:
    """``Type: message`` of an exception raised here or in a child."""
    return f"{exc.kind if isinstance(exc, Raised) else type(exc).__name__}: {exc}"


def trace_of(exc: BaseException) -> str:
    """The formatted traceback of an exception raised here or in a child."""
    return exc.trace if isinstance(exc, Raised) else "".join(traceback.format_exception(exc))


def _send(stream, message) -> None:
    data = pickle.dumps(message)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int):
    """The next message, or None when the other end closed its pipe."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(fd, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def _ending(returncode: int | None) -> str:
    if returncode is None:
        return "an unknown status"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class Isolated:
    """One child process at a time, started on the first call and after one died or hung."""

    def __init__(self, start: Call | None = None):
        self.start = start
        self.process: subprocess.Popen | None = None
        self.commands: Any = None
        self.replies = -1

    def _launch(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        code = f"from initcheck._isolation import serve; serve({to_child_r}, {from_child_w})"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.commands, self.replies = os.fdopen(to_child_w, "wb"), from_child_r
        _send(self.commands, (list(sys.path), os.getcwd()))
        if self.start is not None:
            self._run(self.start, lambda line: None)

    def close(self) -> None:
        """Stop the child (if any): close its pipes and kill it."""
        if self.process is None:
            return
        for close in (self.commands.close, lambda: os.close(self.replies)):
            with contextlib.suppress(OSError):
                close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process = None

    def call(self, module: str, name: str, *args, limit: Callable[[str], float | None] = lambda line: None) -> Any:
        """``module.name(*args, progress=...)`` run in the child: its value, or its exception as
        ``Raised``; ``Crashed`` when the child ended, ``Hung`` when ``limit(line)`` seconds (for
        the last progress line given, "" before any; None: no limit) passed without progress."""
        if self.process is None:
            self._launch()
        return self._run((module, name, args), limit)

    def _run(self, call: Call, limit: Callable[[str], float | None]) -> Any:
        assert self.process is not None
        try:
            _send(self.commands, call)
        except (BrokenPipeError, OSError):
            return self._crashed()
        line, since = "", time.monotonic()
        while True:
            seconds = limit(line)
            wait = None if seconds is None else max(0.0, since + seconds - time.monotonic())
            ready, _, _ = select.select([self.replies], [], [], wait)
            if not ready:
                self.close()
                doing = f" ({line})" if line else ""
                raise Hung(f"did not return within {seconds:g} s{doing}; its process was stopped")
            message = _receive(self.replies)
            if message is None:
                return self._crashed()
            if message[0] == "progress":
                line, since = message[1], time.monotonic()
                continue
            kind, payload, abandoned = message
            if abandoned:  # a call left running on a thread there: start afresh next time
                self.close()
            if kind == "error":
                raise Raised(*payload)
            return payload

    def _crashed(self):
        assert self.process is not None
        returncode = self.process.wait()
        self.close()
        raise Crashed(f"the check crashed its process, which ended with {_ending(returncode)}")


def serve(commands_fd: int, replies_fd: int) -> None:
    """The child's loop: run each call sent, send back its value or exception, until the pipe closes."""
    replies = os.fdopen(replies_fd, "wb")
    first = _receive(commands_fd)
    if first is None:
        return
    path, folder = first
    sys.path[:] = path
    os.chdir(folder)

    def progress(line: str) -> None:
        _send(replies, ("progress", str(line)))

    while (call := _receive(commands_fd)) is not None:
        module, name, args = call
        try:
            value = getattr(importlib.import_module(module), name)(*args, progress=progress)
            _send(replies, ("value", value, sampler.abandoned_calls()))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            _send(
                replies,
                (
                    "error",
                    (type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))),
                    sampler.abandoned_calls(),
                ),
            )
