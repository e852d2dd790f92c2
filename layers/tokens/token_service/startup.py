"""Cold-start helper: no garbage collection while a function's modules load.

Importing botocore, Powertools and pydantic allocates hundreds of thousands of objects, and
the collector runs over them again and again while they load, though none is garbage. A
handler imports this module first (ruff's isort config keeps it first), then calls
`finished()` once its module-level set-up is done: the objects made so far move to the
permanent generation, which later collections skip, and collection resumes. The gain is
measured in docs/performance.md (figure 3).
"""

import gc

gc.disable()


def finished() -> None:
    gc.freeze()
    gc.enable()
