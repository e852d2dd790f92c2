"""The token lifecycle schedule: expiry notices, expiry, then purge.

Every token item carries its next lifecycle stage and the time that stage falls due, and
storage indexes it by that time (token_service.storage.items). A cleanup run therefore
reads only the items that are due; each item it handles moves on to its next
stage, or is deleted. Stages, in order:

    notify_<N>d   N days before expiry (one per configured threshold, largest first)
    expired       at expiry: marked expired, TokenExpired published
    purge         at ttl (expiry or revocation + retention): deleted if TTL has not yet

Revoking a token moves it straight to ``purge`` (revoked tokens get no expiry notices).
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400
EXPIRED = "expired"
PURGE = "purge"


def notify_stage(days: int) -> str:
    return f"notify_{days}d"


def notify_days(stage: str) -> int | None:
    if stage.startswith("notify_") and stage.endswith("d") and stage[7:-1].isdigit():
        return int(stage[7:-1])
    return None


@dataclass(frozen=True, slots=True)
class Schedule:
    notify_before_days: tuple[int, ...] = (7, 1)  # largest first

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """'7,1' -> notices 7 days and 1 day before expiry; '' -> no notices."""
        days = sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True)
        if any(day < 1 or day > 365 for day in days):
            raise ValueError("notification thresholds must be whole days from 1 to 365")
        return cls(tuple(days))

    def stages(self, expires_at: int, ttl: int) -> list[tuple[str, int]]:
        """Every stage of a token with its due time, in order."""
        notices = [(notify_stage(days), expires_at - days * DAY) for days in self.notify_before_days]
        return [*notices, (EXPIRED, expires_at), (PURGE, ttl)]

    def first(self, expires_at: int, ttl: int, now: float) -> tuple[str, int]:
        """The stage a new token starts in: the first one not already past."""
        for stage, due in self.stages(expires_at, ttl):
            if due > now:
                return stage, due
        return PURGE, ttl

    def due_now(self, current: str, expires_at: int, ttl: int, now: float) -> tuple[str | None, tuple[str, int] | None]:
        """For an item in stage `current`: the latest stage due at `now` (earlier notices that
        a late run finds overtaken are skipped) and the stage after it (None after purge).

        A stage that this schedule does not have (the thresholds changed since the token was
        created) counts from the first stage; when nothing of this schedule is due yet, the
        answer is (None, the next stage): move the item there and do nothing else."""
        stages = self.stages(expires_at, ttl)
        names = [name for name, _ in stages]
        start = names.index(current) if current in names else 0
        due = [position for position in range(start, len(stages)) if stages[position][1] <= now]
        if not due:
            upcoming = next((stage for stage in stages[start:] if stage[1] > now), stages[-1])
            return None, upcoming
        latest = due[-1]
        following = stages[latest + 1] if latest + 1 < len(stages) else None
        return stages[latest][0], following
