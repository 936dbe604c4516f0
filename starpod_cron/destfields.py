"""The fields of where a job's results go besides its automatic audience (the owner's
WebSocket, the chat it came from), declared like every other field (appended to
:data:`starpod_cron.fields.JOB_FIELDS`): ``deliver_to`` and ``alerts_to``, lists of entries
that :mod:`starpod_cron.destinations` reads (``NAME``, ``telegram:CHAT[:THREAD]``,
``email:ADDRESS``)."""

from __future__ import annotations

from .destinations import entry_form
from .fieldspec import JobField

DEST_FIELDS: tuple[JobField, ...] = (
    JobField(
        "deliver_to",
        "list[str] | None",
        "Also deliver to: [destinations.NAME], telegram:CHAT[:THREAD], email:ADDRESS.",
        who="user",
        default=None,
        default_note="none",
        storage="json",
        flag="--deliver-to",
        metavar="DEST",
        item_check=entry_form,
    ),
    JobField(
        "alerts_to",
        "list[str] | None",
        "Failure and pause alerts go here instead of deliver_to (same entries).",
        who="user",
        default=None,
        default_note="[cron] alerts_to, else deliver_to",
        storage="json",
        flag="--alerts-to",
        metavar="DEST",
        item_check=entry_form,
    ),
)
