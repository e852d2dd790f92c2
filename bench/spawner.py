"""Runs a list of commands one after another and notes when each was spawned.

    python bench/spawner.py PLAN_FILE OUT_FILE

A small process on purpose: on Linux a child's `getrusage(RUSAGE_SELF).ru_maxrss` starts at
the peak RSS of the process that spawned it (it survives fork and exec), so the cold-start
children are spawned from here, not from the bench's own (much larger) process. PLAN_FILE is
a JSON list of {"argv": [...], "stderr": path or null, "env": {...} or null}; OUT_FILE gets, per command, the
monotonic clock at spawn and the exit status.
"""

import json
import subprocess
import sys
import time


def main() -> None:
    plan_file, out_file = sys.argv[1:]
    with open(plan_file, encoding="utf-8") as stream:
        plan = json.load(stream)
    outcomes = []
    for command in plan:
        stderr = open(command["stderr"], "w", encoding="utf-8") if command.get("stderr") else subprocess.DEVNULL  # noqa: SIM115
        try:
            started = time.monotonic_ns()
            completed = subprocess.run(  # noqa: S603
                command["argv"], stdout=subprocess.DEVNULL, stderr=stderr, env=command.get("env"), check=False
            )
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        outcomes.append({"started_ns": started, "returncode": completed.returncode})
    with open(out_file, "w", encoding="utf-8") as stream:
        json.dump(outcomes, stream)


if __name__ == "__main__":
    main()
