"""docs/performance.md from the workers' results: per figure, its method and a table of what was
measured against its target, with a verdict taken on the unrounded value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from bench.timing import paired_ratio

X = "\u00d7"  # the multiplication sign
AUTHORIZER = "AuthorizerFunction"


@dataclass(frozen=True)
class Row:
    figure: str
    target: str
    setup: str
    measured: str
    samples: str
    met: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return "not measured" if self.met is None else "met" if self.met else "MISSED"

    def markdown(self) -> str:
        verdict = f"**{self.verdict}**" if self.met is False else self.verdict
        return f"| {self.figure} | {self.setup} | {self.measured} | {self.samples} | {self.target} | {verdict} |"


def _x(ratio: float) -> str:
    return f"{ratio:.3f}{X}"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s"


def _sizes(sizes: list[int]) -> str:
    return " / ".join(f"{size:,}" for size in sizes)


# Figures and targets: (figure, target).
WARM = ("1a. Authorizer warm decision / GetItem on the same tuned client", f"≤ 1.10{X}, one GetItem, no awscrt")
PROJECTION = ("1b. Authorizer's GetItem reads only the attributes it uses", "a ProjectionExpression")
INVOCATION = ("2. Malformed token: the whole handler / GetItem", "≤ 2%, 0 calls")
COLD = ("3. Cold start of the built function / bare boto3 process + GetItem", f"≤ 1.0{X} (authorizer), ≤ 1.3{X}")
COLD_TARGETS = {AUTHORIZER: 1.0}
COLD_TARGET = 1.3
MEMORY_TARGET = 1.2
READS = ("4a. Cleanup items read per item due", "≤ 1.05")
FLAT = ("4b. Cleanup time per due item / 1,000-token table", f"roughly flat (≤ 1.25{X})")
LISTING = ("5. List reads per page", "follows page size; same at 1,000 and 100,000")
BULK = ("6. Bulk revoke / as many single revokes", f"≤ 0.3{X}")
MEMORY = ("7. Peak RSS after init + one event / bare boto3 process + GetItem", f"≤ {MEMORY_TARGET}{X}")


def _warm(setup: str, data: dict[str, Any]) -> list[Row]:
    warm, projection = data["warm"], data["projection"]
    one_read = warm["calls"] == {"GetItem": warm["runs"]}
    calls = "one GetItem per decision" if one_read else f"calls in {warm['runs']} decisions: {warm['calls']}"
    crt = "awscrt importable" if data["awscrt"] else "awscrt not importable"
    measured = f"{_x(warm['ratio'])} ({_us(warm['subject_s'])} vs {_us(warm['baseline_s'])}); {calls}; {crt}"
    met = warm["ratio"] <= 1.10 and one_read and not data["awscrt"]
    projected = warm["projections"] != ["None"]
    cost = (
        f"ProjectionExpression {', '.join(warm['projections'])}; the whole item read and decoded / the used "
        f"attributes only: {_x(projection['ratio'])} ({_us(projection['subject_s'])} vs "
        f"{_us(projection['baseline_s'])})"
    )
    return [
        Row(*WARM, setup, measured, f"{warm['pairs']} pairs", met),
        Row(*PROJECTION, setup, cost, f"{projection['pairs']} pairs", projected),
    ]


def _malformed(setup: str, data: dict[str, Any]) -> list[Row]:
    result = data["malformed_handler"]
    calls = sum(result["calls"].values())
    measured = (
        f"{result['ratio']:.2%} ({_us(result['subject_s'])} vs {_us(result['baseline_s'])}); "
        f"{calls} DynamoDB calls in {result['runs']} rejections"
    )
    return [Row(*INVOCATION, setup, measured, f"{result['pairs']} pairs", result["ratio"] <= 0.02 and calls == 0)]


def _cold(setup: str, data: dict[str, Any]) -> list[Row]:
    rows = []
    for name, entry in data["functions"].items():
        target = COLD_TARGETS.get(name, COLD_TARGET)
        ratio = paired_ratio(entry["handler_s"], entry["baseline_s"])
        measured = f"{_x(ratio)} ({_ms(median(entry['handler_s']))} vs {_ms(median(entry['baseline_s']))})"
        measured += "; awscrt importable" if entry["awscrt"] else ""
        requests = [call for call in entry["calls"] if not call.startswith(("status:", "raised:"))]
        measured += f"; first event: {len(requests)} AWS request{'' if len(requests) == 1 else 's'}"
        figure = f"3. Cold start {name} / bare boto3 process + GetItem"
        met = ratio <= target and not entry["awscrt"]
        rows.append(Row(figure, f"≤ {target}{X}", setup, measured, f"{len(entry['handler_s'])} pairs", met))
    return rows


def _memory(setup: str, data: dict[str, Any]) -> list[Row]:
    rows = []
    for name, entry in data["functions"].items():
        handler, baseline = (median(entry[f"{side}_maxrss_kib"]) / 1024 for side in ("handler", "baseline"))
        measured = f"{_x(handler / baseline)} ({handler:.1f} vs {baseline:.1f} MiB)"
        figure = f"7. Peak RSS {name} / bare boto3 process + GetItem"
        samples = f"{len(entry['handler_maxrss_kib'])} pairs"
        rows.append(Row(figure, MEMORY[1], setup, measured, samples, handler / baseline <= MEMORY_TARGET))
    return rows


def _cleanup(setup: str, data: dict[str, Any]) -> list[Row]:
    tables = data["tables"]
    sizes = _sizes([table["size"] for table in tables])
    runs = " / ".join(str(len(table["runs"])) for table in tables) + " runs"
    reads = [max(run["items_read"] for run in table["runs"]) / table["due"] for table in tables]
    complete = all(run["complete"] for table in tables for run in table["runs"])
    per_due = [median(run["seconds"] for run in table["runs"]) / table["due"] for table in tables]
    slopes = [value / per_due[0] for value in per_due]
    measured_reads = " / ".join(f"{ratio:.2f}" for ratio in reads) + f" at {sizes} tokens"
    measured_time = "; ".join(
        f"{table['size']:,}: {_ms(value)} ({_x(slope)})"
        for table, value, slope in zip(tables, per_due, slopes, strict=True)
    )
    return [
        Row(
            *READS,
            setup,
            measured_reads + ("" if complete else "; a run did not complete"),
            runs,
            max(reads) <= 1.05 and complete,
        ),
        Row(*FLAT, setup, measured_time, runs, max(slopes) <= 1.25),
    ]


def _listing(setup: str, data: dict[str, Any]) -> list[Row]:
    entries = data["list"]
    limits = sorted({entry["limit"] for entry in entries})

    def seen(field: str) -> str:
        values = ({entry[field] for entry in entries if entry["limit"] == limit} for limit in limits)
        return " / ".join(
            ",".join(sorted("—" if value is None else f"{value:g}" for value in group)) for group in values
        )

    by_page: dict[tuple[int, int], set[tuple[Any, ...]]] = {}
    for entry in entries:
        by_page.setdefault((entry["limit"], entry["page"]), set()).add((entry["scanned"], entry["capacity"]))
    follows = all(entry["scanned"] == entry["limit"] and entry["queries"] == 1 for entry in entries)
    same = all(len(values) == 1 for values in by_page.values())
    measured = (
        f"page size {' / '.join(map(str, limits))}: items read {seen('scanned')}, Queries per page {seen('queries')}, "
        f"consumed capacity {seen('capacity')}; at {_sizes(sorted({entry['size'] for entry in entries}))} tokens"
    )
    return [Row(*LISTING, setup, measured, f"{len(entries)} pages", follows and same)]


def _bulk(setup: str, data: dict[str, Any]) -> list[Row]:
    ratio = paired_ratio(data["bulk_s"], data["single_s"])
    figure = f"6. Bulk revoke of {data['tokens']:,} tokens / {data['tokens']:,} single revokes"
    measured = f"{_x(ratio)} ({_s(median(data['bulk_s']))} vs {_s(median(data['single_s']))})"
    return [Row(figure, BULK[1], setup, measured, f"{len(data['bulk_s'])} repetitions", ratio <= 0.3)]


Builder = Callable[[str, dict[str, Any]], list[Row]]
# Per figure: heading, the results it reads, its method, its rows, the figures it reports when not measured.
SECTIONS: list[tuple[str, str, str, Builder, list[tuple[str, str]]]] = [
    (
        "1. Authorizer warm decision",
        "authorizer",
        "1a: the authorizer's handler, warm (after a first call that recorded the token's last use), answering "
        "an API Gateway TOKEN event for a valid token, against a consistent GetItem of the same item through a "
        "client configured exactly like the authorizer's (the same `dynamodb_client` call: timeouts, retries, "
        "fixed User-Agent, no parameter validation), in a process where awscrt is not importable, as on Lambda "
        "(`sys.modules['awscrt'] = None` before botocore loads; checked with `importlib.util.find_spec`). "
        "Single calls of each alternate, the order swapped every pair, after 10 untimed calls of each; the "
        "ratio is that of the medians. DynamoDB calls and their parameters are recorded on the handler's own "
        "client over all its calls after the first. 1b: whether that GetItem has a ProjectionExpression, and "
        "what reading and decoding the whole item costs: the repository's read of the token, against a "
        "GetItem projected on the attributes the decision and its log line use, decoded, on the tuned client.",
        _warm,
        [WARM, PROJECTION],
    ),
    (
        "2. Malformed token",
        "authorizer",
        "The whole handler invocation for a token of the right shape with a wrong checksum (event parsing, "
        "the decision, its log-and-metric line, the 401), against the same-run GetItem of figure 1a, single "
        "calls alternating, ratio of the medians; DynamoDB calls counted on the handler's own client.",
        _malformed,
        [INVOCATION],
    ),
    (
        "3. Cold start",
        "coldstart",
        "The functions as `sam build` outputs them (tools/sam_build: arm64 wheels for CPython 3.13, "
        "unchecked-hash bytecode), each sample a fresh python3.13 process (`-S`), timed from spawn to its first "
        "event served (interpreter start, imports, client creation, the event). The handler side has on "
        "sys.path only the built function folder, the built layer's `python/` and a stand-in for the runtime's "
        "own packages (boto3 and botocore from PyPI, no awscrt), all read-only copies, with "
        "PYTHONDONTWRITEBYTECODE=1 and the function's environment from template.yaml (Globals and its own "
        "Variables; parameters at their defaults, other resources as stand-in names); it imports `app` and "
        "serves the sample event from `events/` (the authorizer: a valid token), made to succeed, calls going "
        "to the local endpoints (moto; API Gateway's FlushStageAuthorizersCache, which moto lacks, to a stub "
        "answering 202 as API Gateway does), the AWS requests it makes counted in an untimed run. "
        "The baseline side, in the same kind of process with only the runtime stand-in on sys.path, runs "
        "`import boto3; boto3.client('dynamodb')` and one consistent GetItem. "
        "Function and baseline run in pairs, spawned one right after the other (order alternating), after one "
        "untimed run of each; the ratio is the median of the per-pair ratios, the times are medians. "
        "The management targets apply to every function other than the authorizer.",
        _cold,
        [COLD],
    ),
    (
        "4. Cleanup at 1,000 to 100,000 tokens",
        "scale",
        "Per size, a table of that many tokens in one organisation, 1% with an expiry notice due earlier today "
        "and the rest due on later days over the next year, the watermark at today (the state after the "
        "previous hourly run). The scheduled cleanup handler runs against each table in turn, sizes "
        "interleaved, the due items put back between runs. 4a: items read (the handler's own count, "
        "DynamoDB's ScannedCount) per due item, worst run. 4b: median run time per due item against the "
        "1,000-token table. moto runs in the measuring process with the items put straight into its backend; "
        "dynalite is seeded with BatchWriteItem.",
        _cleanup,
        [READS, FLAT],
    ),
    (
        "5. Listing at 1,000 to 100,000 tokens",
        "scale",
        "The list handler, `GET /tokens?all_users=true&limit=L` for L = 20 and 100, as an admin of an "
        "organisation holding all the tokens of figure 4's tables: the first page, then the page after its "
        "cursor. A hook on the handler's client asks for ReturnConsumedCapacity=TOTAL (nothing else changes) "
        "and records each Query's ScannedCount and ConsumedCapacity. moto in the measuring process takes "
        "seconds to answer a Query of the 100,000-token table, so there the handler's client has a 300 s read "
        "timeout instead of its 5 s (what it sends is the same).",
        _listing,
        [LISTING],
    ),
    (
        "6. Bulk revoke",
        "revoke",
        "One bulk revoke of an owner's active tokens through the management service, as the revoke handler "
        "calls it, against as many single revokes in a row through the same service. Each repetition revokes "
        "freshly seeded tokens (seeding untimed), bulk and singles alternating; the ratio is the median of the "
        "per-repetition ratios, the times are medians. The emulated-latency setup sleeps before every DynamoDB "
        "request the service sends. No authorizer-cache flush is configured.",
        _bulk,
        [BULK],
    ),
    (
        "7. Peak memory",
        "coldstart",
        "Peak RSS (`ru_maxrss`) of figure 3's processes after their event, each function against its "
        "baselines, medians. Each process is spawned from a small launcher, so that it does not start at the "
        "bench's own peak.",
        _memory,
        [MEMORY],
    ),
]


def _rows(results: dict[str, Any], build: Builder, fallback: list[tuple[str, str]]) -> list[Row]:
    """Each setup's rows; a setup whose worker failed reports `fallback`'s figures as not measured."""
    rows = []
    for setup, data in results.items():
        error = "not run" if data is None else data.get("error")
        if error:
            rows += [Row(figure, target, setup, error, "", None) for figure, target in fallback]
        else:
            rows += build(setup, data)
    return rows


def render(results: dict[str, Any], host: dict[str, Any], runtime: float, *, quick: bool) -> tuple[str, str]:
    """The document, and a plain-text summary for the terminal."""
    sections = [
        (heading, method, _rows(results.get(key, {}), build, fallback))
        for heading, key, method, build, fallback in SECTIONS
    ]
    rows = [row for _, _, section_rows in sections for row in section_rows]
    met = sum(row.met is True for row in rows)
    summary = f"**{met} of {len(rows)} targets met.**"
    for verdict in ("MISSED", "not measured"):
        listed = [f"{row.figure.split('.')[0]} ({row.setup})" for row in rows if row.verdict == verdict]
        summary += f" **{verdict}**: {', '.join(listed)}." if listed else ""
    dynalite = results.get("dynalite") or "none found (`npm ci`, a `dynalite` on PATH, or `BENCH_DYNALITE`), no rows"
    built = (results.get("coldstart") or {}).get("moto") or {}
    layout = (
        f"- Figures 3 and 7: {built['python']}; runtime stand-in {', '.join(built['runtime_packages'])}; "
        f"the layer's arm64 extensions replaced by this machine's wheels of the same versions: "
        f"{', '.join(built['swapped']) or 'none'}."
        if "python" in built
        else "- Figures 3 and 7: not measured."
    )
    document = [
        "# Performance",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench`); rerun it rather than editing this file. Every "
        "figure is a ratio to a baseline measured side by side in the same run; absolute times are for "
        "orientation. Verdicts are taken on the unrounded values.",
        "",
        *(
            ["> **Quick run** (`--quick`): fewer repetitions and sizes; not the figures of record.", ""]
            if quick
            else []
        ),
        summary,
        "",
        "## Machine and method",
        "",
        f"- CPU: {host['cpu']}, {host['cores']} cores; {host['platform']}",
        f"- Python {host['python']}; {host['packages']}",
        f"- Date: {host['date']}; revision {host['revision']}; the run took {runtime:.0f} s",
        f"- Load average before / after the run: {host['load_before']} / {host.get('load_after', '?')}",
        "- DynamoDB and EventBridge: moto's threaded server on loopback, in a process of its own (figures 4 "
        f"and 5: in the measuring process); dynalite: {dynalite}",
        "- The service's environment as template.yaml sets it by default, fake credentials, offline.",
        layout,
        "- Reproduce: `make bench`, or `.venv/bin/python -m bench [--quick] [--no-dynalite]`.",
    ]
    for heading, method, section_rows in sections:
        document += ["", f"## {heading}", "", method, ""]
        document += ["| Figure | Setup | Measured | Samples | Target | Verdict |", "|---|---|---|---|---|---|"]
        document += [row.markdown() for row in section_rows]
    terminal = [f"{r.figure} [{r.setup}]: {r.measured} (target {r.target}) -> {r.verdict}" for r in rows]
    return "\n".join([*document, ""]), "\n".join([*terminal, summary.replace("**", "")])
