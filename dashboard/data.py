"""How pages reach the store: a session and the caller's team, for the current request.

The application puts its :class:`~carbon.store.Store` in the Flask config and the login
guard puts the caller's team in :data:`flask.g`; pages ask here instead of importing the
application object, so a page module has no global state and every query it makes is
filtered by the team that is looking.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import flask
from sqlalchemy.orm import Session

from carbon.store import Store

STORE_KEY = "CARBON_STORE"
"""Key of the store in the Flask application's config."""

VIEWER_KEY = "carbon_viewer"
"""Attribute of :data:`flask.g` holding the :class:`Viewer` of the request."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a team, and whether they logged in (server mode) or not (local).

    Attributes:
        team_id: Every query of the request is filtered by this team.
        team_name: Shown in the header.
        logged_in: ``True`` in server mode (a log-out button is shown).
        key_prefix: The visible prefix of the key used to log in.
    """

    team_id: int
    team_name: str
    logged_in: bool = False
    key_prefix: str | None = None


def viewer() -> Viewer:
    """The viewer of the current request (set by the login guard before any page runs)."""
    found = getattr(flask.g, VIEWER_KEY, None)
    if not isinstance(found, Viewer):
        raise RuntimeError("no viewer for this request: the login guard did not run")
    return found


@contextmanager
def reading() -> Iterator[tuple[Session, int]]:
    """A session on the store and the viewer's team id, for one page or callback."""
    store: Store = flask.current_app.config[STORE_KEY]
    with store.session() as session:
        yield session, viewer().team_id


def theme() -> str:
    """The colour theme the browser asked for (``light`` or ``dark``), from its cookie."""
    return "dark" if flask.request.cookies.get("carbon_theme") == "dark" else "light"
