"""The soak's report: ``<out>.md`` and ``<out>.png`` from the ``<out>.csv`` and ``<out>.json``
that :mod:`soak` wrote (re-run alone with ``python bench/soak_report.py <out>``).

Levels are the server's totals (master + workers) per sample time. The post-warm-up level is
the mean of the last three samples of the warm-up, the end level the mean of the last three
samples; memory has come back when end <= 1.10 x post-warm-up. Descriptors: each process at
the end has no more than the idle count of its kind (master, or the median idle worker).
"""
from __future__ import annotations

import csv
import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

MiB = 2**20
TOLERANCE = 1.10


def _read(out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with open(out.with_suffix(".csv"), newline="") as f:
        rows = [{k: (v if k in ("phase", "role") else float(v) if v not in ("", "None") else None)
                 for k, v in r.items()} for r in csv.DictReader(f)]
    return rows, json.loads(out.with_suffix(".json").read_text())


def totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per sample time: summed memory and descriptors, per-role sums too."""
    samples: list[list[dict[str, Any]]] = []
    for r in rows:  # a sample starts with its master's row
        if r["role"] == "master" or not samples:
            samples.append([])
        samples[-1].append(r)
    out = []
    for rs in samples:
        t = rs[0]["t"]
        workers = [r for r in rs if r["role"] == "worker"]
        out.append({"t": t, "phase": rs[0]["phase"], "pss": sum(r["pss"] for r in rs),
                    "rss": sum(r["rss"] for r in rs), "private": sum(r["private"] for r in rs),
                    "fds": sum(r["fds"] for r in rs), "workers": len(workers),
                    "worker_pss": sum(r["pss"] for r in workers),
                    "master_pss": sum(r["pss"] for r in rs if r["role"] == "master"),
                    "sessions_live": rs[0]["sessions_live"], "client_sessions": rs[0]["client_sessions"],
                    "client_reconnects": rs[0]["client_reconnects"], "client_errors": rs[0]["client_errors"]})
    return out


def _fd_kind(target: str) -> str:
    """``socket:[123]`` -> ``socket``; a path with its pid and random parts made generic."""
    if target.startswith(("socket:", "pipe:", "anon_inode:")):
        return target.split("[")[0].rstrip(":")
    return re.sub(r"\d+", "N", re.sub(r"-[A-Za-z0-9_]{8}\b", "-*", target))


def _fd_kinds(fds: dict[str, str]) -> Counter[str]:
    return Counter(_fd_kind(target) for target in fds.values())


def checks(rows: list[dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any]:
    tot = totals(rows)
    warm = [r for r in tot if r["phase"] == "warmup"][-3:]
    end = tot[-3:]
    ref = {k: statistics.mean(r[k] for r in warm) for k in ("pss", "rss", "private")}
    fin = {k: statistics.mean(r[k] for r in end) for k in ("pss", "rss", "private")}
    idle = tot[0]
    master = str(facts["master"])
    idle_fds = facts["idle_fds"]
    idle_worker = statistics.median(len(v) for k, v in idle_fds.items() if k != master)
    fd_end = {}
    for pid, fds in facts["end_fds"].items():
        role = "master" if pid == master else "worker"
        limit = len(idle_fds[master]) if role == "master" else idle_worker
        kinds = _fd_kinds(fds)
        base = _fd_kinds(idle_fds[master]) if role == "master" else _fd_kinds(
            next(v for k, v in idle_fds.items() if k != master))
        fd_end[pid] = {"role": role, "fds": len(fds), "idle": limit, "ok": len(fds) <= limit,
                       "more_than_idle": dict(kinds - base), "fewer_than_idle": dict(base - kinds)}
    return {"idle": idle, "post_warmup": ref, "end": fin,
            "ratio_pss": fin["pss"] / ref["pss"], "ratio_rss": fin["rss"] / ref["rss"],
            "ratio_private": fin["private"] / ref["private"],
            "ratio_pss_idle": fin["pss"] / idle["pss"],
            "memory_ok": fin["pss"] <= TOLERANCE * ref["pss"],
            "fds": fd_end, "fds_ok": all(v["ok"] for v in fd_end.values()),
            "peak_pss": max(r["pss"] for r in tot), "peak_sessions": max((r["sessions_live"] or 0) for r in tot),
            "old_workers_gone": not facts.get("old_workers_alive_at_end"), "trends": trends(rows, facts)}


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope, per hour, of (seconds, bytes) points, in MiB."""
    if len(points) < 3:
        return None
    mt = statistics.mean(t for t, _ in points)
    mv = statistics.mean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600 / MiB if den else None


def trends(rows: list[dict[str, Any]], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Growth of the totals under steady load: from the warm-up's end to the reload, and from
    a warm-up's length after the reload to the end of the load (each set of workers apart)."""
    a, tot = facts["args"], totals(rows)
    reload_t = facts.get("reload", {}).get("t", a["minutes"] * 60)
    spans = [(a["warmup"] * 60, reload_t), (reload_t + a["warmup"] * 60, a["minutes"] * 60)]
    out = []
    for start, end in spans:
        pts = [r for r in tot if start <= r["t"] <= end and r["phase"] != "after"]
        out.append({"from_min": round(start / 60, 1), "to_min": round(end / 60, 1), "samples": len(pts),
                    **{f"{k}_mib_per_h": _slope([(r["t"], r[k]) for r in pts]) for k in ("pss", "private", "rss")}})
    return out


def plot(rows: list[dict[str, Any]], facts: dict[str, Any], res: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tot = totals(rows)
    fig, (ax, ax_fd, ax_s) = plt.subplots(3, 1, figsize=(11, 9), sharex=True,
                                          gridspec_kw={"height_ratios": [3, 1, 1]})
    minutes = [r["t"] / 60 for r in tot]
    ax.plot(minutes, [r["pss"] / MiB for r in tot], label="PSS, master + workers", lw=2)
    ax.plot(minutes, [r["rss"] / MiB for r in tot], label="RSS, master + workers", lw=1, alpha=0.6)
    by_pid: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_pid[r["pid"]].append(r)
    for pid, rs in by_pid.items():
        ax.plot([r["t"] / 60 for r in rs], [r["pss"] / MiB for r in rs], lw=0.8, ls="--",
                label=f"PSS {rs[0]['role']} {int(pid)}")
    ref = res["post_warmup"]["pss"] / MiB
    ax.axhspan(ref, ref * TOLERANCE, color="green", alpha=0.12, label="post-warm-up PSS .. +10%")
    for a in (ax, ax_fd, ax_s):
        a.axvline(facts["args"]["warmup"], color="grey", ls=":")
        if "reload" in facts:
            a.axvline(facts["reload"]["t"] / 60, color="red", ls=":")
        a.axvline(facts["args"]["minutes"], color="black", ls=":")
    ax.set_ylabel("MiB")
    ax.set_title("bokeh-flask serve --workers 2, soak: warm-up end (grey), SIGHUP (red), load stops (black)")
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    for pid, rs in by_pid.items():
        ax_fd.plot([r["t"] / 60 for r in rs], [r["fds"] for r in rs], lw=0.8, label=f"{rs[0]['role']} {int(pid)}")
    ax_fd.set_ylabel("open fds")
    ax_s.plot(minutes, [r["sessions_live"] or 0 for r in tot], label="live sessions (/metrics)")
    ax_s.set_ylabel("sessions")
    ax_s.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def where(facts: dict[str, Any]) -> list[str]:
    """Markdown rows: PSS by mapping kind, master and the workers (summed) apart, idle vs
    post-warm-up vs end, the kinds that moved most first."""
    stages = facts.get("smaps", {})
    if "idle" not in stages or "end" not in stages:
        return []
    master = str(facts["master"])

    def by_role(stage: dict[str, Any], role: str) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for pid, kinds in stage.items():
            if (pid == master) == (role == "master"):
                for kind, v in kinds.items():
                    out[kind] += v["Pss"]
        return out

    rows = ["| role | mapping | PSS idle | post-warm-up | end | end - idle |", "|---|---|---|---|---|---|"]
    for role in ("workers", "master"):
        idle, end = by_role(stages["idle"], role), by_role(stages["end"], role)
        warm = by_role(stages.get("post_warmup", {}), role)
        kinds = sorted(set(idle) | set(end), key=lambda k: -abs(end.get(k, 0) - idle.get(k, 0)))
        for kind in kinds[:6]:
            rows.append(f"| {role} | `{kind}` | {idle.get(kind, 0) / MiB:.2f} | {warm.get(kind, 0) / MiB:.2f} | "
                        f"{end.get(kind, 0) / MiB:.2f} | {(end.get(kind, 0) - idle.get(kind, 0)) / MiB:+.2f} |")
        rest = kinds[6:]
        rows.append(f"| {role} | all else | | | | "
                    f"{sum(end.get(k, 0) - idle.get(k, 0) for k in rest) / MiB:+.2f} |")
    return ["Where the memory is (PSS in MiB by mapping, `/proc/PID/smaps`; workers summed; "
            "the end's workers are the reload's new ones):", "", *rows, ""]


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}"


def markdown(rows: list[dict[str, Any]], facts: dict[str, Any], res: dict[str, Any], out: Path) -> str:
    a, c, m = facts["args"], facts["client"], facts["machine"]
    ok = lambda b: "yes" if b else "**no**"  # noqa: E731
    tot = totals(rows)
    lines = [
        f"# Soak: bokeh-flask serve --workers {a['workers']}, {a['minutes']:g} min load + {a['after']:g} min after",
        "",
        f"Run {facts['started']} to {facts['finished']} by `bench/soak.py` (plot: `{out.name}.png`, "
        f"samples: `{out.name}.csv`, facts: `{out.name}.json`). Machine: {m.get('nproc')} cores, "
        f"{m.get('cpu_model')}, shared.",
        "",
        f"Command: `{' '.join(facts['command'])}`",
        "",
        f"Load: {a['rate']:g} new sessions/s (page, websocket, PULL-DOC, one PATCH-DOC round trip, "
        f"close), {a['reconnect_share']:.0%} of them reconnected 1-10 s later with the same token; "
        f"SIGHUP to the master at {facts.get('reload', {}).get('t', 0) / 60:.1f} min; "
        f"samples every {a['interval']:g} s. Client: {c['sessions']} sessions, {c['reconnects']} "
        f"reconnects, {c['errors']} errors, {c['skipped']} beats skipped (backlog).",
        "",
        "| check | value | pass |",
        "|---|---|---|",
        f"| total PSS at the end vs post-warm-up ({a['warmup']:g} min) | {res['end']['pss'] / MiB:.1f} / "
        f"{res['post_warmup']['pss'] / MiB:.1f} MiB = {res['ratio_pss']:.3f}x | {ok(res['memory_ok'])} |",
        f"| total RSS at the end vs post-warm-up | {res['end']['rss'] / MiB:.1f} / "
        f"{res['post_warmup']['rss'] / MiB:.1f} MiB = {res['ratio_rss']:.3f}x | "
        "(RSS counts shared pages per process) |",
        f"| total private memory (USS) at the end vs post-warm-up | {res['end']['private'] / MiB:.1f} / "
        f"{res['post_warmup']['private'] / MiB:.1f} MiB = {res['ratio_private']:.3f}x | (PSS less the "
        "shares of libraries other processes on the machine map too) |",
        f"| total PSS at the end vs idle before load | {res['end']['pss'] / MiB:.1f} / "
        f"{res['idle']['pss'] / MiB:.1f} MiB = {res['ratio_pss_idle']:.3f}x | |",
        "| descriptors at the end <= idle, every process | "
        + ", ".join(f"{v['role']} {pid}: {v['fds']} (idle {v['idle']:g})" for pid, v in res["fds"].items())
        + f" | {ok(res['fds_ok'])} |",
        f"| old workers gone after the reload | {facts.get('reload', {}).get('old_workers')} | "
        f"{ok(res['old_workers_gone'])} |",
        "",
        f"Peak total PSS {res['peak_pss'] / MiB:.1f} MiB; peak live sessions {res['peak_sessions']:g}.",
        "",
        "Growth under steady load (least-squares slope of the totals, MiB per hour):",
        "",
        "| minutes | samples | PSS | private (USS) | RSS |",
        "|---|---|---|---|---|",
        *[f"| {s['from_min']:g}-{s['to_min']:g} | {s['samples']} | {_fmt(s['pss_mib_per_h'])} | "
          f"{_fmt(s['private_mib_per_h'])} | {_fmt(s['rss_mib_per_h'])} |" for s in res["trends"]],
        "",
        *where(facts),
        "## Samples (every minute)",
        "",
        "| min | phase | workers | PSS total | PSS master | PSS workers | RSS total | fds | live sessions "
        "| client sessions | reconnects | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    step = max(1, round(60 / a["interval"]))
    for i, r in enumerate(tot):
        if i % step == 0 or i == len(tot) - 1:
            lines.append(f"| {r['t'] / 60:.1f} | {r['phase']} | {r['workers']} | {r['pss'] / MiB:.1f} | "
                         f"{r['master_pss'] / MiB:.1f} | {r['worker_pss'] / MiB:.1f} | {r['rss'] / MiB:.1f} | "
                         f"{r['fds']:g} | {r['sessions_live']} | {r['client_sessions']:g} | "
                         f"{r['client_reconnects']:g} | {r['client_errors']:g} |")
    diffs = {pid: (v["more_than_idle"], v["fewer_than_idle"]) for pid, v in res["fds"].items()
             if v["more_than_idle"] or v["fewer_than_idle"]}
    lines += ["", "Descriptor kinds differing from idle at the end (more, fewer): "
              + (json.dumps(diffs) if diffs else "none."), ""]
    if c["error_samples"]:
        lines += ["Client errors (first 20):", "", *[f"- `{e}`" for e in c["error_samples"]], ""]
    return "\n".join(lines)


def write(out: Path) -> dict[str, Any]:
    rows, facts = _read(out)
    res = checks(rows, facts)
    plot(rows, facts, res, out.with_suffix(".png"))
    md = out.with_suffix(".md")
    reading = ""
    if md.exists() and "\n## Reading" in md.read_text():  # a hand-written reading survives a re-run
        reading = md.read_text()[md.read_text().index("\n## Reading"):]
    md.write_text(markdown(rows, facts, res, out) + reading)
    return res


if __name__ == "__main__":
    print(json.dumps(write(Path(sys.argv[1])), indent=1, default=str))
