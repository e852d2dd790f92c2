"""Cold-start helper: no garbage collection while a function starts.

Importing botocore, Powertools and pydantic allocates hundreds of thousands of objects, and
the collector runs over them again and again while they load, though none is garbage. A
handler imports this module first (ruff's isort config keeps it first), then calls
`finished()` once its module-level set-up is done: the objects made so far move to the
permanent generation, which later collections skip, and collection resumes.

The management functions start up during their first event as well: they create their AWS
clients and build their pydantic validators on first use. Loading a client's service model
makes tens of thousands of objects in one call, and the collection that follows walks all of
them. `through_first_event` pauses collection again for that event and ends start-up after
it. The gains are measured in docs/performance.md (figure 3).
"""

import gc

gc.disable()  # before anything else loads, this module's own imports included

from collections.abc import Callable  # noqa: E402
from functools import wraps  # noqa: E402
from typing import ParamSpec, TypeVar  # noqa: E402

P = ParamSpec("P")
R = TypeVar("R")


def finished() -> None:
    gc.freeze()
    gc.enable()


def through_first_event(handler: Callable[P, R]) -> Callable[P, R]:
    """The handler, serving its first event with collection paused, then calling `finished()`."""
    first = True

    @wraps(handler)
    def handle(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal first
        if not first:
            return handler(*args, **kwargs)
        first = False
        paused = gc.isenabled()  # not when something else paused it: that one resumes it
        gc.disable()
        try:
            return handler(*args, **kwargs)
        finally:
            if paused:
                finished()

    return handle
