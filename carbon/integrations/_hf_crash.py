"""Safety nets that end a callback's run when training stops without an end event.

The Hugging Face Trainer has no exception event: an exception raised inside ``train()``
unwinds past every callback, and the run it was tracking would stay ``running`` until the
process died. Runs a callback has open are registered here; two process-wide hooks end them:

- ``sys.excepthook``: an exception that reaches the top of the program ends each open run
  as ``failed`` (``interrupted`` for Ctrl-C) with the exception as its error, before the
  previous hook prints the traceback;
- ``threading.excepthook``: the same for an exception that ends a thread, for the runs that
  thread started (training in a worker thread of an app);
- ``atexit``: a run still open when the interpreter exits (``sys.exit`` inside training, an
  exception the program caught and then exited) ends as ``interrupted``.

The hooks are installed once, when the first run is registered (so the exit hook runs before
carbon's own exit flush of the team server's spool), and chain to whatever was there.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from types import TracebackType
from typing import Protocol

log = logging.getLogger(__name__)

EXIT_MESSAGE = "the process exited while train() was running"


class Ending(Protocol):
    """What the hooks need from a callback with an open run."""

    def _end_after(self, exc: BaseException | None, message: str | None = None) -> None: ...


_open: dict[int, tuple[Ending, int]] = {}
"""Callbacks with an open run, by id, with the thread that started the run."""
_lock = threading.Lock()
_installed = False
_previous_hook = sys.excepthook
_previous_thread_hook = threading.excepthook


def register(owner: Ending) -> None:
    """Note that ``owner`` has a run open; install the hooks the first time."""
    global _installed, _previous_hook, _previous_thread_hook
    with _lock:
        _open[id(owner)] = (owner, threading.get_ident())
        if not _installed:
            _previous_hook, _previous_thread_hook = sys.excepthook, threading.excepthook
            sys.excepthook = _excepthook
            threading.excepthook = _thread_excepthook
            atexit.register(_at_exit)
            _installed = True


def unregister(owner: Ending) -> None:
    """Note that ``owner``'s run has ended."""
    with _lock:
        _open.pop(id(owner), None)


def _end_all(exc: BaseException | None, message: str | None, thread: int | None = None) -> None:
    """End the open runs (only those ``thread`` started, when it is given)."""
    with _lock:
        owners = [owner for owner, ident in _open.values() if thread in (None, ident)]
    for owner in owners:
        try:
            owner._end_after(exc, message)
        except Exception:  # one run that cannot end must not keep the others open
            log.exception("carbon: could not end a run at exit")


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    _end_all(exc, None)
    _previous_hook(exc_type, exc, tb)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None and args.thread is not None:
        _end_all(args.exc_value, None, thread=args.thread.ident)
    _previous_thread_hook(args)


def _at_exit() -> None:
    _end_all(None, EXIT_MESSAGE)
