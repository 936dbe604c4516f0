"""What the Telegram bot reads and writes as text: its help, the schedule that follows /every,
/cron, /at, /in or /when, a job in one line, and long messages cut into Telegram's pieces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starpod_cron import InvalidInput
from starpod_cron.durations import at_time
from starpod_cron.errors import InvalidSchedule
from starpod_cron.timeutil import zone

MESSAGE_LIMIT = 4096
HELP = """Schedule prompts for the agent:
/every 30m <prompt> - repeat on an interval (30s, 10m, 2h, 1d, 1h30m)
/cron "0 9 * * 1-5" <prompt> - cron expression, in quotes
/at 2026-12-01 09:00 <prompt> - once, at a time (or: /at tomorrow 9:00 ...)
/in 20m <prompt> - once, after a delay
/when every weekday at 9:00 | <prompt> - in words (every 30 minutes, every monday and
  friday at 18:30, on the last day of every month at 17:00, tomorrow at 9, in 20 minutes)
Add name=<name> before the prompt to choose a name.
/jobs - your jobs
/runs <name> - recent runs of a job
/pause <name>, /resume <name>, /remove <name>, /run <name>
/snooze <name> [1h] - put off its next run once (the schedule stays)
/tz Europe/Rome - your default time zone
/help - this text"""


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a newline where one is near."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", limit // 2, limit)
        cut = limit if cut == -1 else cut
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text or not pieces:
        pieces.append(text)
    return pieces


def parse_schedule(command: str, text: str, tz: str, now: Any) -> dict[str, Any]:
    """The fields of ``cron.add`` from what follows /every, /cron, /at, /in or /when."""
    text = text.strip()
    fields: dict[str, Any] = {}
    if command == "cron":
        if text[:1] in "\"'" and text:
            end = text.find(text[0], 1)
            if end == -1:
                raise InvalidInput("close the quote around the cron expression")
            fields["cron"], rest = text[1:end], text[end + 1 :]
        elif text.startswith("@"):
            fields["cron"], _, rest = text.partition(" ")
        else:
            raise InvalidInput('put the cron expression in quotes: /cron "0 9 * * 1-5" <prompt>')
    elif command == "at":
        words = text.split()
        problem: InvalidInput | None = None
        for take in (2, 1):
            candidate = " ".join(words[:take])
            try:
                at_time(candidate, tz, now)
            except InvalidInput as exc:
                if not str(exc).startswith("invalid time"):
                    problem = problem or exc  # a time, but unusable: say why
                continue
            fields["at"], rest = candidate, " ".join(words[take:])
            break
        else:
            raise problem or InvalidSchedule(
                "give a time: /at 2026-12-01 09:00 <prompt> or /at tomorrow 9:00 …"
            )
    elif command == "when":
        phrase, bar, rest = text.partition("|")
        if not bar or not phrase.strip():
            raise InvalidInput(
                "give the schedule in words, then | and the prompt: "
                "/when every weekday at 9:00 | <prompt>"
            )
        fields["when"] = phrase.strip()
    else:
        first, _, rest = text.partition(" ")
        if not first:
            raise InvalidInput(f"give a duration: /{command} 30m <prompt>")
        fields["every" if command == "every" else "in"] = first
    rest = rest.strip()
    if rest.startswith("name="):
        name, _, rest = rest.partition(" ")
        fields["name"] = name.removeprefix("name=")
    if not rest.strip():
        raise InvalidInput(f"add the prompt after the schedule: /{command} … <prompt>")
    fields["prompt"] = rest.strip()
    return fields


def describe(job: dict[str, Any]) -> str:
    """``standup: cron 0 9 * * 1-5, next 2026-11-23 09:00 CET`` (in the job's zone), from a
    job as the tools answer it."""
    nxt = job["next_run"]
    when = datetime.fromisoformat(nxt).astimezone(zone(job["timezone"])) if nxt else None
    next_run = when.strftime("%Y-%m-%d %H:%M %Z") if when else "no next run"
    state = "" if job["enabled"] else " (paused)"
    return f"{job['name']}{state}: {job['schedule']['text']}, next {next_run}"
