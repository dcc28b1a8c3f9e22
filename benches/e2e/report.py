#!/usr/bin/env python3
"""Table and goal verdicts of benches/e2e/run.sh.

usage: report.py RESULTS.tsv META.json OUT.md

RESULTS.tsv lines: metric, server (ours | ours_nofsync | ours_nometrics |
dist | nginx | before | limit), run, value. Prints an aligned text table
and the goal verdicts, and writes the same as markdown to OUT.md. Every
figure is the median over the runs, with min and max; ratios are of medians
and oriented so that > 1 means ours is better (faster, lower latency, less
memory). With a `before` server (BEFORE=), a before/after table too.
"""

import json
import statistics
import sys
from collections import defaultdict

SERVERS = ["ours", "ours_nofsync", "dist"]
HEADER = ["workload", "unit", "ours", "ours --no-fsync", "distribution",
          "ours vs dist", "no-fsync vs dist"]
NGINX_HEADER = ["workload", "unit", "ours", "nginx", "ours / nginx"]
METRICS_HEADER = ["workload", "unit", "metrics on", "metrics off", "on / off"]
BEFORE_HEADER = ["workload", "unit", "before", "after (ours)", "after vs before", "verdict"]


def main():
    results_path, meta_path, md_path = sys.argv[1:4]
    meta = json.load(open(meta_path))
    data = defaultdict(list)
    for line in open(results_path):
        metric, server, _run, value = line.rstrip("\n").split("\t")
        try:
            v = float(value)
        except ValueError:
            continue
        if v == v:  # skip NaN
            data[(metric, server)].append(v)

    big = f"{meta['big_mib'] / 1024:g} GiB" if meta["big_mib"] >= 1024 else f"{meta['big_mib']} MiB"
    big2 = f"{2 * meta['big_mib'] / 1024:g} GiB" if meta["big_mib"] >= 512 else f"{2 * meta['big_mib']} MiB"
    secs = meta["rate_secs"]
    rows = [
        ("push_mono", f"1. push {big} blob, monolithic (POST + 1 PUT)", "MiB/s", "higher"),
        ("push_chunked", f"2. push {big} blob, 16 MiB PATCH chunks", "MiB/s", "higher"),
        ("pull", f"3. pull the {big} blob (GET)", "MiB/s", "higher"),
        ("small", f"4. push {meta['small_count']:,} x 4 KiB blobs, 16 concurrent", "blobs/s", "higher"),
        ("mget_wrk_rps", f"5. manifest GET by tag, wrk, 64 conn, {secs}s", "req/s", "higher"),
        ("mget_wrk_p99", "   same, p99 latency", "ms", "lower"),
        ("mget_rps", f"5. manifest GET by tag, e2e-client rate, 64 conn, {secs}s", "req/s", "higher"),
        ("mget_p99", "   same, p99 latency", "ms", "lower"),
        ("mhead_rps", f"5. manifest HEAD by tag, e2e-client rate, 64 conn, {secs}s", "req/s", "higher"),
        ("mhead_p99", "   same, p99 latency", "ms", "lower"),
        ("mget_cpu_us", "server CPU per manifest GET (e2e-client, no warm-up)", "µs", "lower"),
        ("skopeo", f"6. skopeo copy, 20-layer image ({meta['image_mib']} MiB)", "s", "lower"),
        ("cpu_push_mono", "server CPU time (user+sys) during 1.", "s", "lower"),
        ("cpu_push_chunked", "server CPU time during 2.", "s", "lower"),
        ("cpu_pull", "server CPU time during 3.", "s", "lower"),
        ("cpu_small", "server CPU time during 4.", "s", "lower"),
        ("rss_push_mono", "peak RSS of the server during 1.", "MiB", "lower"),
        ("rss_push_chunked", "peak RSS of the server during 2.", "MiB", "lower"),
        ("rss_pull", "peak RSS of the server during 3.", "MiB", "lower"),
        ("rss_push_2x", f"peak RSS pushing a {big2} blob (memory only)", "MiB", "lower"),
    ]

    def med(metric, server):
        v = data.get((metric, server))
        return statistics.median(v) if v else None

    def cell(metric, server):
        v = data.get((metric, server))
        if not v:
            return "n/a"
        return f"{fmt(statistics.median(v))} ({fmt(min(v))}-{fmt(max(v))})"

    def ratio(metric, server, better):
        return ratio_of(med(metric, server), med(metric, "dist"), better)

    table = []
    for metric, label, unit, better in rows:
        table.append([label, unit, cell(metric, "ours"), cell(metric, "ours_nofsync"),
                      cell(metric, "dist"), ratio(metric, "ours", better),
                      ratio(metric, "ours_nofsync", better)])
    limits = [
        [f"SHA-256 of the {big} file, OpenSSL {'(hashlib)'}", "MiB/s", cell("limit_sha256", "limit")],
        [f"dd of the {big} file, conv=fdatasync, same disk", "MiB/s", cell("limit_fdatasync", "limit")],
    ]

    # ------------------------------------------------------------ goals --
    goals = []

    def goal(text, value, target, kind, unit=""):
        if value is None:
            goals.append([text, "n/a", target_text(target, kind, unit), "n/a"])
            return
        ok = value >= target if kind == "min" else value <= target
        goals.append([text, f"{value:.2f}{unit}", target_text(target, kind, unit),
                      "met" if ok else "MISSED"])

    def frac(a, b):
        return a / b if a is not None and b else None

    sha, fds = med("limit_sha256", "limit"), med("limit_fdatasync", "limit")
    for metric, what in [("push_mono", "monolithic"), ("push_chunked", "16 MiB chunks")]:
        goal(f"push ({what}) with --no-fsync / SHA-256 limit",
             frac(med(metric, "ours_nofsync"), sha), 0.85, "min")
        goal(f"push ({what}), default / fdatasync limit",
             frac(med(metric, "ours"), fds), 0.85, "min")
    goal("pull, ours / distribution", frac(med("pull", "ours"), med("pull", "dist")), 1.5, "min", "x")
    goal("small-blob push, ours / distribution",
         frac(med("small", "ours"), med("small", "dist")), 3, "min", "x")
    goal("small-blob push, ours --no-fsync / distribution",
         frac(med("small", "ours_nofsync"), med("small", "dist")), 3, "min", "x")
    for metric, what in [("mget_wrk_rps", "GET (wrk)"), ("mget_rps", "GET (e2e-client)"),
                         ("mhead_rps", "HEAD (e2e-client)")]:
        goal(f"manifest {what} by tag req/s, ours / distribution",
             frac(med(metric, "ours"), med(metric, "dist")), 12, "min", "x")
    # The cost of metrics on the request path: ours (metrics on, the
    # default) against the same server with --metrics false.
    metrics_cost = []
    for metric, what in [("mget_wrk_rps", "GET (wrk)"), ("mget_rps", "GET (e2e-client)"),
                         ("mhead_rps", "HEAD (e2e-client)")]:
        on, off = med(metric, "ours"), med(metric, "ours_nometrics")
        metrics_cost.append([f"manifest {what} by tag", "req/s", cell(metric, "ours"),
                             cell(metric, "ours_nometrics"),
                             f"{on / off:.3f}" if on and off else "n/a"])
        goal(f"manifest {what} by tag req/s, metrics on / metrics off",
             frac(on, off), 0.95, "min")
    on, off = med("mget_cpu_us", "ours"), med("mget_cpu_us", "ours_nometrics")
    metrics_cost.append(["server CPU per manifest GET", "µs", cell("mget_cpu_us", "ours"),
                         cell("mget_cpu_us", "ours_nometrics"),
                         f"{on / off:.3f}" if on and off else "n/a"])
    goal("server CPU per manifest GET, metrics on / metrics off", frac(on, off), 1.05, "max")
    # Against nginx serving the same bytes as static files: the ceiling.
    nginx = []
    for metric, what, unit, target in [("mget_wrk_rps", "manifest GET (wrk) by tag", "req/s", 0.8),
                                       ("mget_rps", "manifest GET (e2e-client) by tag", "req/s", None),
                                       ("mhead_rps", "manifest HEAD (e2e-client) by tag", "req/s", None),
                                       ("pull", f"pull {big}", "MiB/s", 1.0)]:
        ours, ng = med(metric, "ours"), med(metric, "nginx")
        nginx.append([what, unit, cell(metric, "ours"), cell(metric, "nginx"),
                      f"{ours / ng:.2f}" if ours and ng else "n/a"])
        if target is not None:
            goal(f"{what}, ours / nginx", frac(ours, ng), target, "min")
    # Before/after: an earlier build (BEFORE=) in the same rotation. A
    # change is beyond the noise only when the two servers' min-max ranges
    # over the runs do not overlap.
    before = []
    if meta.get("before"):
        slower = []
        for metric, label, unit, better in rows:
            a, b = data.get((metric, "ours")), data.get((metric, "before"))
            if not a or not b:
                continue
            worse = max(a) < min(b) if better == "higher" else min(a) > max(b)
            faster = min(a) > max(b) if better == "higher" else max(a) < min(b)
            verdict = "worse beyond noise" if worse else "better beyond noise" if faster else "within noise"
            if worse:
                slower.append(label.strip())
            before.append([label, unit, cell(metric, "before"), cell(metric, "ours"),
                           ratio_of(statistics.median(a), statistics.median(b), better), verdict])
        goals.append(["no workload worse than before beyond its noise",
                      f"{len(slower)} worse" + (f" ({'; '.join(slower)})" if slower else ""),
                      "0", "met" if not slower else "MISSED"])
    for server, name in [("ours", "ours"), ("ours_nofsync", "ours --no-fsync")]:
        v = data.get(("rss_push_2x", server))
        goal(f"peak RSS pushing a {big2} blob, {name} (max of runs)",
             max(v) if v else None, 32, "max", " MiB")

    notes = []
    for metric in ["mget_wrk_errors", "mget_errors", "mhead_errors"]:
        for server in SERVERS + ["ours_nometrics", "before"]:
            bad = sum(data.get((metric, server), []))
            if bad:
                notes.append(f"{metric.replace('_errors', '')} on {server}: {bad:.0f} errors/non-200 answers")
    if not meta["have_nofsync"]:
        notes.append("`registry serve` has no --no-fsync: that column is n/a")
    if meta["failures"]:
        notes.append(f"{meta['failures']} workload runs failed (missing from the medians)")

    # ------------------------------------------------------------ output --
    head = (f"{meta['date']}, commit {meta['commit']}; {meta['nproc']} x {meta['cpu']}, "
            f"{meta['memory']}, disk {meta['disk']}, {meta['kernel']}; "
            f"distribution {meta['distribution']}, skopeo {meta['skopeo']}, wrk {meta['wrk']}, nginx {meta.get('nginx', 'none')}; "
            f"runs: {meta['runs']}{' (QUICK)' if meta['quick'] else ''}; {meta['load']}")
    print()
    print(head)
    print("Each cell: median (min-max) over the runs. Ratios: of medians, > 1 = ours better.")
    print()
    print(text_table(HEADER, table))
    print()
    print("Limits, measured in the same run:")
    print(text_table(["limit", "unit", "median (min-max)"], limits))
    print()
    print("Metrics on (the default) and off (--metrics false):")
    print(text_table(METRICS_HEADER, metrics_cost))
    print()
    print("Against nginx serving the same bytes as static files:")
    print(text_table(NGINX_HEADER, nginx))
    print()
    if before:
        print(f"Before ({meta['before']}) and after, same rotation:")
        print(text_table(BEFORE_HEADER, before))
        print()
    print("Goals:")
    print(text_table(["goal", "measured", "target", "verdict"], goals))
    for n in notes:
        print(f"NOTE: {n}")

    with open(md_path, "w") as f:
        f.write(f"{head}\n\nEach cell: median (min-max) over the runs. "
                "Ratios: of medians, > 1 means ours is better (faster, lower latency, less memory).\n\n")
        f.write(md_table(HEADER, table))
        f.write("\nLimits, measured in the same run:\n\n")
        f.write(md_table(["limit", "unit", "median (min-max)"], limits))
        f.write("\nMetrics on (the default) and off (--metrics false):\n\n")
        f.write(md_table(METRICS_HEADER, metrics_cost))
        f.write("\nAgainst nginx serving the same bytes as static files:\n\n")
        f.write(md_table(NGINX_HEADER, nginx))
        if before:
            f.write(f"\nBefore ({meta['before']}) and after, same rotation:\n\n")
            f.write(md_table(BEFORE_HEADER, before))
        f.write("\nGoals:\n\n")
        f.write(md_table(["goal", "measured", "target", "verdict"], goals))
        for n in notes:
            f.write(f"\nNOTE: {n}\n")


def ratio_of(after, before, better):
    """after against before (or ours against a peer), > 1 = after better;
    n/a when either is missing or 0."""
    if not after or not before:
        return "n/a"
    return f"{(after / before if better == 'higher' else before / after):.2f}x"


def target_text(target, kind, unit):
    return f"{'>=' if kind == 'min' else '<='} {target:g}{unit}"


def fmt(v):
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def text_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).strip() for c in r) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
