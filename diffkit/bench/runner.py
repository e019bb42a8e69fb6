"""Run benchmark cases, caching each result as JSON so an interrupted run resumes.

Case ``c`` writes ``OUT/cases/c.json`` when it finishes; a later run with the same settings
(:meth:`Context.signature`) reads it back and skips the case. A case that raises
:class:`~diffkit.bench.case.Skip` is recorded as skipped with its reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from diffkit.bench.case import Case, Context, Skip


def cache_path(out: Path, case: Case) -> Path:
    return Path(out) / "cases" / f"{case.id}.json"


def cached(path: Path, signature: dict) -> dict | None:
    """The result stored at ``path`` if it was made with ``signature``, else None."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stored if stored.get("signature") == signature else None


def write_json(path: Path, data) -> None:
    """Write ``data`` as JSON atomically (a killed run leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True))
    os.replace(tmp, path)


def run_case(case: Case, context: Context) -> dict:
    """Run one case; its result with the case's description, timing and settings added."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        out = case.run(context)
    except Skip as e:
        out = {"rows": [], "references": {}, "floor": {}, "curve": [], "skipped": str(e)}
    out.update(
        case=case.id,
        domain=case.domain,
        name=case.name,
        title=case.title,
        metric=case.metric,
        unit=case.unit,
        labels={m: case.label(m) for m in (case.metric, *case.metrics)},
        metrics=list(case.metrics),
        declared_references=list(case.references),
        higher_better=list(case.higher_better),
        log_y=case.log_y,
        nfe_label=case.nfe_label,
        wall_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,  # this process's CPU time: the cost under load too
        signature=context.signature(),
    )
    return out


def run(
    cases: list[Case],
    context: Context,
    out: Path,
    *,
    fresh: bool = False,
    report_only: bool = False,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> list[dict]:
    """Run ``cases`` in order, reusing cached results in ``out`` unless ``fresh``.

    Each result carries ``"cached": True`` when it was read back instead of run. With
    ``report_only`` no case runs: one not cached is reported as skipped (and not cached).
    """
    results = []
    for i, case in enumerate(cases, 1):
        path = cache_path(out, case)
        stored = None if fresh else cached(path, context.signature())
        if stored is not None:
            echo(f"[{i}/{len(cases)}] {case.id}: cached in {path}, skipped")
            results.append({**stored, "cached": True})
            continue
        if report_only:
            res = run_case(dataclasses.replace(case, run=_not_run), context)
            echo(f"[{i}/{len(cases)}] {case.id}: not cached, reported as not run")
            results.append({**res, "cached": False})
            continue
        echo(f"[{i}/{len(cases)}] {case.id}: {case.title}")
        with _bar(case.id, len(context.samplers) * len(context.nfes), progress) as advance:
            res = run_case(case, dataclasses.replace(context, advance=advance))
        write_json(path, res)
        note = f"skipped: {res['skipped']}" if res.get("skipped") else "done"
        echo(
            f"[{i}/{len(cases)}] {case.id}: {note} in {res['wall_s']:.1f} s "
            f"({res.get('cpu_s', 0.0):.1f} s of CPU)"
        )
        results.append({**res, "cached": False})
    return results


def _not_run(context: Context) -> dict:
    raise Skip("not run yet (the report was written with --report-only); rerun without it.")


class _bar:
    """A rich progress bar over a case's (sampler, NFE) points; a no-op when disabled."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        task = self.bar.add_task(self.label, total=self.total)
        self.bar.start()
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()
