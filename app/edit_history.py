"""The history of location edits: every change of confirmed locations (accept, drag, set
coordinates, place at a found place, accept from tracks, clear) is one undoable command on a
``QUndoStack``, a batch as one. *Edit > Undo* and *Redo* carry the command's name.

An edit is recorded around the code that makes it (:meth:`EditHistory.edit`): the confirmed
locations of the photos it may touch are taken before and after, and only a change is pushed.
Undo and redo put a whole snapshot back through :meth:`app.model.session.Session.restore_confirmed`.
File writes keep their own undo (the write journal, *Undo last write*).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.model.session import Confirmed, Session


class _LocationEdit(QUndoCommand):
    """Confirmed locations from ``before`` to ``after`` (already applied when pushed)."""

    def __init__(
        self,
        session: Session,
        name: str,
        before: dict[str, Confirmed],
        after: dict[str, Confirmed],
    ) -> None:
        super().__init__(name)
        self.session, self.before, self.after = session, before, after
        self._applied = True  # the first redo (QUndoStack.push calls it) is the edit itself

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.session.restore_confirmed(self.after)

    def undo(self) -> None:
        self.session.restore_confirmed(self.before)


class EditHistory(QObject):
    """The undo stack of one window's location edits."""

    def __init__(self, session: Session, parent: QObject) -> None:
        super().__init__(parent)
        self.session = session
        self.stack = QUndoStack(self)

    @contextlib.contextmanager
    def edit(self, name: str, keys: Iterable[str]) -> Iterator[None]:
        """Record what the block changes among the confirmed locations of ``keys`` as one
        command called ``name`` (nothing when it changes nothing)."""
        keys = list(dict.fromkeys(keys))
        before = self.session.confirmed_of(keys)
        yield
        after = self.session.confirmed_of(keys)
        changed = [k for k in keys if before.get(k) != after.get(k)]
        if changed:
            command = _LocationEdit(
                self.session,
                name,
                {k: before[k] for k in changed if k in before},
                {k: after[k] for k in changed if k in after},
            )
            self.stack.push(command)

    def undo_text(self) -> str:
        return self.stack.undoText()

    def redo_text(self) -> str:
        return self.stack.redoText()


def photos(count: int) -> str:
    """``1 photo`` / ``3 photos``, for the commands' names."""
    return f"{count} photo{'s' * (count != 1)}"
