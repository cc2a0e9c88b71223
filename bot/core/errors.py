"""The one kind of error a person is shown.

Every problem fwbot explains to someone (bad ``/fw`` input, a request a rule forbids, a refusal by
Fireworks) is a :class:`UserFacingError`; its ``user_message`` is written for them. One place turns
it into an ephemeral reply (``bot.services.context.answer_problem``), also for work done after
Slack was acknowledged (``handlers.acking.then``); anything else is a bug, logged and answered
with a short apology.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """A problem with a message fit to show the person who asked."""

    prefix = ""  # e.g. "Fireworks says: " for refusals relayed from Fireworks

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(message, *args)
        self.message = message or (str(args[0]) if args else "")

    @property
    def user_message(self) -> str:
        return self.prefix + self.message
