"""The server's sessions: at most ``max_sessions`` at a time, and a session nobody listens
to is closed (:class:`SessionManager`)."""

from __future__ import annotations

import threading
import time
from typing import Any

from neuronlab.playground.session import Session
from neuronlab.playground.settings import Settings

__all__ = ["SessionLimitError", "SessionManager"]


class SessionLimitError(RuntimeError):
    """The server already runs its maximum number of sessions."""


class SessionManager:
    """The server's sessions, at most ``max_sessions`` at a time.

    A session with no tab listening to its event stream for ``idle_timeout`` seconds (one
    whose page never opened the stream, or crashed before it did) is closed by :meth:`reap`,
    which frees its slot; requests to its controls do not keep it alive. The server closes a
    session at once when its last listener goes away (:meth:`unlisten`).
    """

    def __init__(self, *, max_sessions: int = 8, idle_timeout: float = 8.0,
                 **session_kw: Any) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.session_kw = session_kw
        self.sessions: dict[str, Session] = {}
        self._listeners: dict[str, int] = {}
        self._unheard_since: dict[str, float] = {}  # sid -> when it last had no listener
        self._building = 0  # slots taken by sessions being built
        self._lock = threading.Lock()

    def create(self, settings: Settings) -> Session:
        """Start a session; raises :class:`SessionLimitError` when all slots are taken."""
        self.reap()
        with self._lock:
            if len(self.sessions) + self._building >= self.max_sessions:
                raise SessionLimitError(
                    f"the server already runs {self.max_sessions} sessions (max_sessions); "
                    "close another tab, or try again in a few seconds")
            self._building += 1
        session = None
        try:  # built outside the lock: the event loop takes it to count listeners
            session = Session(settings, **self.session_kw)
        finally:
            with self._lock:
                self._building -= 1
                if session is not None:
                    self.sessions[session.id] = session
                    self._listeners[session.id] = 0
                    self._unheard_since[session.id] = time.monotonic()
        return session

    def get(self, sid: str) -> Session | None:
        return self.sessions.get(sid)

    def listen(self, sid: str) -> bool:
        """Count one more listener of ``sid``'s events; False if the session has ended."""
        with self._lock:
            if sid not in self.sessions:
                return False
            self._listeners[sid] += 1
            return True

    def unlisten(self, sid: str) -> int:
        """Count one listener less; returns how many are left (0 for an ended session)."""
        with self._lock:
            if sid not in self.sessions:
                return 0
            self._listeners[sid] -= 1
            if self._listeners[sid] <= 0:
                self._unheard_since[sid] = time.monotonic()
            return self._listeners[sid]

    def close(self, sid: str, *, wait: bool = True) -> None:
        with self._lock:
            s = self.sessions.pop(sid, None)
            self._listeners.pop(sid, None)
            self._unheard_since.pop(sid, None)
        if s is not None:
            s.close(wait=wait)

    def reap(self) -> None:
        """Close every session nobody has listened to for ``idle_timeout`` seconds."""
        now = time.monotonic()
        with self._lock:
            stale = [sid for sid in self.sessions if self._listeners[sid] <= 0
                     and now - self._unheard_since[sid] > self.idle_timeout]
        for sid in stale:
            self.close(sid)

    def close_all(self) -> None:
        for sid in list(self.sessions):
            self.close(sid)
