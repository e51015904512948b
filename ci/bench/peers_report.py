#!/usr/bin/env python3
"""Parsing and summary for ci/bench/peers.sh, and the pieces of it the other
benchmarks of ci/bench share.

peers.sh measures; this file reads what the generators printed and turns it
into figures. journey.sh, reqwest.sh and target.sh record their runs with
`record` too, and their own summaries import median, fmt, table, read_runs
and write_summary from here (with ci/bench on sys.path). Subcommands:

  record SECTION TOOL ROUND OUT TIMEFILE [KEY=VALUE ...]
      Parses one run (a generator's stdout and the /usr/bin/time line) and
      prints one JSON line for runs.jsonl. KEY=VALUE pairs are stored as is
      (numbers when they parse as numbers).

  meta KEY=VALUE ...
      Prints the KEY=VALUE pairs as a JSON object (for meta.json).

  summarise RUN_DIR TEXT_OUT JSON_OUT
      Reads RUN_DIR/runs.jsonl and RUN_DIR/meta.json, takes medians, prints
      the summary table and writes it as text and as JSON.

A summary can be recomputed from a kept run directory at any time:
  python3 ci/bench/peers_report.py summarise ci/bench/results/peers-<ts> /dev/null /dev/null
"""

import json
import re
import statistics
import sys

# Goals of issue 2.
GOAL_P50_DIFF_MS = 0.3
GOAL_OPEN_DEVIATION_PCT = 1.0
GOAL_KIB_PER_CONNECTION = 20.0


def parse_time(path):
    """Reads `%U %S %M %e %x` written by /usr/bin/time (last line)."""
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    user, sys_, maxrss, elapsed, exit_code = lines[-1].split()
    return {
        "user_s": float(user),
        "sys_s": float(sys_),
        "maxrss_kib": int(maxrss),
        "elapsed_s": float(elapsed),
        "exit": int(exit_code),
    }


def parse_convoy(text):
    report = json.loads(text)
    overall = report["overall"]
    statuses = overall.get("status_counts", {})
    responses = sum(statuses.values())
    return {
        "responses": responses,
        "requests": overall["requests"],
        "errors": overall["errors"],
        "rps": overall["rps"],
        "duration_s": report["duration_secs"],
        "p50_ms": overall["latency_ms"]["p50"],
        "p99_ms": overall["latency_ms"]["p99"],
        "service_p50_ms": overall["service_ms"]["p50"],
        "dropped": overall.get("dropped", 0),
        "interrupted": report.get("interrupted", 0),
    }


def parse_oha(text):
    report = json.loads(text)
    statuses = report.get("statusCodeDistribution", {})
    responses = sum(statuses.values())
    ok = sum(v for k, v in statuses.items() if 200 <= int(k) < 400)
    return {
        "responses": responses,
        "errors": responses - ok,
        "transport_errors": sum(report.get("errorDistribution", {}).values()),
        "rps": report["summary"]["requestsPerSec"],
        "duration_s": report["summary"]["total"],
        "p50_ms": report["latencyPercentiles"]["p50"] * 1000.0,
        "p99_ms": report["latencyPercentiles"]["p99"] * 1000.0,
    }


WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk_ms(value):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(m.group(1)) * WRK_UNITS[m.group(2)]


def parse_wrk(text):
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", text)
    if not m:
        raise ValueError("no 'N requests in' line in wrk's output")
    responses = int(m.group(1))
    out = {
        "responses": responses,
        "duration_s": wrk_ms(m.group(2) + m.group(3)) / 1000.0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
    }
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["errors"] = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["transport_errors"] = sum(int(g) for g in sock.groups()) if sock else 0
    for pct in ("50", "99"):
        p = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if p:
            out[f"p{pct}_ms"] = wrk_ms(p.group(1))
    return out


PARSERS = {"convoy": parse_convoy, "oha": parse_oha, "wrk": parse_wrk}


def number(value):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def record(section, tool, round_, out_path, time_path, extras):
    rec = {"section": section, "tool": tool, "round": int(round_)}
    for kv in extras:
        key, _, value = kv.partition("=")
        rec[key] = number(value)
    if time_path != "-":
        rec.update(parse_time(time_path))
    if out_path != "-":
        with open(out_path) as f:
            text = f.read()
        try:
            rec.update(PARSERS[tool](text))
        except Exception as e:  # a failed run is data: the summary shows it
            rec["parse_error"] = f"{type(e).__name__}: {e}"
    if "responses" in rec and "user_s" in rec and rec["responses"] > 0:
        rec["cpu_s_per_10k"] = (rec["user_s"] + rec["sys_s"]) / rec["responses"] * 10_000
    print(json.dumps(rec, sort_keys=True))


# --- summary -----------------------------------------------------------------


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec=".3f", missing="n/a"):
    return missing if value is None else format(value, spec)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


def read_runs(run_dir):
    """The records of RUN_DIR/runs.jsonl, one per `record` line."""
    with open(f"{run_dir}/runs.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_summary(out, summary, text_out, json_out):
    """Writes the lines OUT to TEXT_OUT and SUMMARY to JSON_OUT; returns the text."""
    text = "\n".join(out) + "\n"
    with open(text_out, "w") as f:
        f.write(text)
    with open(json_out, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    return text


def summarise(run_dir, text_out, json_out):
    with open(f"{run_dir}/meta.json") as f:
        meta = json.load(f)
    runs = read_runs(run_dir)
    tools = ("convoy", "oha", "wrk")
    by = lambda section, tool=None: [
        r for r in runs if r["section"] == section and (tool is None or r["tool"] == tool)
    ]
    summary = {"schema": "convoy.peers/v1", "meta": meta}
    out = []
    out.append(f"convoy peer benchmark  {meta['started_at']}  ({run_dir})")
    out.append(
        f"convoy {meta['convoy_commit']}  oha {meta['oha_version']}  wrk {meta['wrk_version']}  "
        f"nginx {meta['nginx_version']}  | {meta['cpus']} CPUs, server on CPU {meta['server_cpu']}, "
        f"generator on CPU {meta['generator_cpu']}, {meta['rounds']} rounds x {meta['duration_s']} s, "
        f"-c {meta['connections']}"
    )
    failures = [r for r in runs if r.get("exit", 0) != 0 or "parse_error" in r]
    for r in failures:
        out.append(
            f"WARNING: {r['section']}/{r['tool']} round {r['round']}: exit {r.get('exit')} "
            f"{r.get('parse_error', '')}".rstrip()
        )

    # 1 + 2: CPU per 10k responses, rps and peak RSS against nginx.
    if by("cpu"):
        cpu = {}
        rows = []
        for tool in tools:
            rs = by("cpu", tool)
            if not rs:
                continue
            cpu[tool] = {
                "runs": len(rs),
                "cpu_s_per_10k": median(r.get("cpu_s_per_10k") for r in rs),
                "rps": median(r.get("rps") for r in rs),
                "responses": median(r.get("responses") for r in rs),
                "errors": sum(r.get("errors", 0) for r in rs),
                "peak_rss_kib": median(r.get("maxrss_kib") for r in rs),
                "all_cpu_s_per_10k": [round(r.get("cpu_s_per_10k") or 0, 4) for r in rs],
            }
            c = cpu[tool]
            rows.append(
                [
                    tool,
                    fmt(c["cpu_s_per_10k"], ".4f"),
                    " ".join(f"{x:.4f}" for x in c["all_cpu_s_per_10k"]),
                    fmt(c["rps"], ",.0f"),
                    fmt(c["peak_rss_kib"] / 1024 if c["peak_rss_kib"] else None, ".1f"),
                    c["errors"],
                ]
            )
        conv = cpu.get("convoy", {}).get("cpu_s_per_10k")
        ratios = {
            "convoy_over_oha": ratio(conv, cpu.get("oha", {}).get("cpu_s_per_10k")),
            "convoy_over_wrk": ratio(conv, cpu.get("wrk", {}).get("cpu_s_per_10k")),
        }
        summary["cpu"] = {"tools": cpu, "ratios": ratios}
        out += ["", f"1. CPU seconds (user+sys) per 10,000 responses, nginx 1 worker, -c {meta['connections']}, "
                f"{meta['duration_s']} s (median of {meta['rounds']}, interleaved)"]
        out += table(["tool", "cpu_s/10k", "per round", "rps", "peak_rss_MiB", "errors"], rows)
        out.append(
            f"ratio convoy/oha = {fmt(ratios['convoy_over_oha'], '.2f')}   "
            f"convoy/wrk = {fmt(ratios['convoy_over_wrk'], '.2f')}   (below 1: convoy spends less CPU)"
        )

    # 2: RSS flatness.
    long_runs = by("rss_long", "convoy")
    cpu_convoy = [r for r in by("cpu", "convoy")]
    if cpu_convoy:
        short = median(r.get("maxrss_kib") for r in cpu_convoy)
        long_ = median(r.get("maxrss_kib") for r in long_runs) if long_runs else None
        summary["rss"] = {
            "convoy_10s_peak_kib": short,
            "convoy_long_peak_kib": long_,
            "long_duration_s": long_runs[0].get("duration_s_planned") if long_runs else None,
            "long_over_short": ratio(long_, short),
        }
        out += ["", "2. Peak RSS (max RSS from /usr/bin/time): see column peak_rss_MiB above"]
        if long_:
            out.append(
                f"convoy flatness: {fmt(short / 1024, '.1f')} MiB after {meta['duration_s']} s, "
                f"{fmt(long_ / 1024, '.1f')} MiB after {summary['rss']['long_duration_s']} s "
                f"(x{fmt(summary['rss']['long_over_short'], '.2f')})"
            )
        else:
            out.append("convoy flatness: long run skipped (run with --long)")

    # 3: accuracy against a fixed 20 ms target.
    if by("accuracy"):
        acc = {}
        for tool in tools:
            rs = by("accuracy", tool)
            if rs:
                acc[tool] = {
                    "p50_ms": median(r.get("p50_ms") for r in rs),
                    "p99_ms": median(r.get("p99_ms") for r in rs),
                    "rps": median(r.get("rps") for r in rs),
                    "all_p50_ms": [r.get("p50_ms") for r in rs],
                }
        diffs = {}
        for peer in ("oha", "wrk"):
            paired = []
            for r in by("accuracy", "convoy"):
                other = [o for o in by("accuracy", peer) if o["round"] == r["round"]]
                if other and r.get("p50_ms") is not None and other[0].get("p50_ms") is not None:
                    paired.append(r["p50_ms"] - other[0]["p50_ms"])
            d = median(paired)
            diffs[peer] = {
                "median_paired_diff_ms": d,
                "per_round_ms": [round(x, 3) for x in paired],
                "goal_met": None if d is None else abs(d) <= GOAL_P50_DIFF_MS,
            }
        summary["accuracy"] = {"tools": acc, "convoy_minus_peer": diffs, "goal_ms": GOAL_P50_DIFF_MS}
        out += ["", f"3. Accuracy: p50 against `convoy target --fault latency={meta['accuracy_latency']}`, "
                f"-c {meta['connections']}, {meta['duration_s']} s (median of {meta['rounds']})"]
        rows = [
            [t, fmt(a["p50_ms"]), " ".join(fmt(x) for x in a["all_p50_ms"]), fmt(a["p99_ms"]), fmt(a["rps"], ",.0f")]
            for t, a in acc.items()
        ]
        out += table(["tool", "p50_ms", "per round", "p99_ms", "rps"], rows)
        for peer, d in diffs.items():
            out.append(
                f"convoy - {peer}: {fmt(d['median_paired_diff_ms'], '+.3f')} ms "
                f"(per round {d['per_round_ms']}; goal |diff| <= {GOAL_P50_DIFF_MS} ms: {verdict(d['goal_met'])})"
            )

    # 4: open model.
    if by("open"):
        rs = by("open", "convoy")
        rows = []
        per_run = []
        for r in rs:
            achieved = r["requests"] / r["duration_s"] if r.get("duration_s") else None
            planned = r.get("rate")
            dev = None if achieved is None else (achieved - planned) / planned * 100.0
            lag = None
            if r.get("p50_ms") is not None and r.get("service_p50_ms") is not None:
                lag = r["p50_ms"] - r["service_p50_ms"]
            # Arrivals scheduled over the planned duration, whether they ran
            # or were dropped: isolates the scheduler from the tail of
            # duration_secs (the last requests in flight).
            scheduled = r.get("requests", 0) + r.get("dropped", 0)
            sched_rate = scheduled / r["planned_duration_s"] if r.get("planned_duration_s") else None
            per_run.append(
                {
                    "achieved_rps": achieved,
                    "deviation_pct": dev,
                    "start_lag_p50_ms": lag,
                    "scheduled_rps": sched_rate,
                    **r,
                }
            )
        achieved = median(p["achieved_rps"] for p in per_run)
        dev = median(p["deviation_pct"] for p in per_run)
        summary["open"] = {
            "rate": rs[0].get("rate") if rs else None,
            "achieved_rps": achieved,
            "deviation_pct": dev,
            "requests": median(p.get("requests") for p in per_run),
            "duration_s": median(p.get("duration_s") for p in per_run),
            "dropped": max((p.get("dropped", 0) for p in per_run), default=None),
            "latency_p50_ms": median(p.get("p50_ms") for p in per_run),
            "service_p50_ms": median(p.get("service_p50_ms") for p in per_run),
            "start_lag_p50_ms": median(p["start_lag_p50_ms"] for p in per_run),
            "scheduled_rps": median(p["scheduled_rps"] for p in per_run),
            "planned_duration_s": rs[0].get("planned_duration_s") if rs else None,
            "goal_met": None if dev is None else abs(dev) <= GOAL_OPEN_DEVIATION_PCT,
        }
        o = summary["open"]
        out += ["", f"4. Open model: convoy --rate {fmt(o['rate'], '.0f')}/s -c {meta['open_connections']} "
                f"-d {meta['duration_s']}s against latency={meta['accuracy_latency']}"]
        out.append(
            f"requests {fmt(o['requests'], '.0f')} in {fmt(o['duration_s'], '.3f')} s = {fmt(achieved, '.1f')} rps, "
            f"deviation {fmt(dev, '+.2f')} % (goal +-{GOAL_OPEN_DEVIATION_PCT} %: {verdict(o['goal_met'])}), "
            f"dropped {o['dropped']}"
        )
        out.append(
            f"arrivals scheduled (run + dropped) over the planned {o['planned_duration_s']} s: "
            f"{fmt(o['scheduled_rps'], '.1f')} /s (duration_secs also counts the last requests' tail)"
        )
        out.append(
            f"latency p50 {fmt(o['latency_p50_ms'])} ms (from scheduled start) vs service p50 "
            f"{fmt(o['service_p50_ms'])} ms: start lag {fmt(o['start_lag_p50_ms'], '.3f')} ms"
        )

    # 5: memory per held connection.
    if by("vus"):
        vus = {}
        rows = []
        for tool in tools:
            rs = sorted(by("vus", tool), key=lambda r: r["connections"])
            if len(rs) < 2:
                continue
            lo, hi = rs[0], rs[-1]
            dconn = hi["established"] - lo["established"]
            kib = (hi["vmrss_kib"] - lo["vmrss_kib"]) / dconn if dconn > 0 else None
            vus[tool] = {
                "low": {k: lo[k] for k in ("connections", "established", "vmrss_kib")},
                "high": {k: hi[k] for k in ("connections", "established", "vmrss_kib")},
                "kib_per_connection": kib,
                "all_held": hi["established"] >= hi["connections"],
                "goal_met": None if kib is None else kib <= GOAL_KIB_PER_CONNECTION,
            }
            rows.append(
                [
                    tool,
                    f"{lo['connections']} -> {hi['connections']}",
                    f"{lo['established']} -> {hi['established']}",
                    f"{lo['vmrss_kib'] / 1024:.1f} -> {hi['vmrss_kib'] / 1024:.1f}",
                    fmt(kib, ".2f"),
                ]
            )
        summary["vus"] = {"tools": vus, "goal_kib": GOAL_KIB_PER_CONNECTION, "target": meta["vu_target"]}
        out += ["", f"5. Memory per held connection: VmRSS {meta['vu_sample_at_s']} s into a run against "
                f"`convoy target --fault {meta['vu_target']}`"]
        out += table(["tool", "-c", "established", "VmRSS_MiB", "KiB/conn"], rows)
        for tool, v in vus.items():
            note = "" if v["all_held"] else "  (not every connection was established: see 'established')"
            out.append(f"{tool}: {fmt(v['kib_per_connection'], '.2f')} KiB per connection "
                       f"(goal <= {GOAL_KIB_PER_CONNECTION:.0f}: {verdict(v['goal_met'])}){note}")

    return write_summary(out, summary, text_out, json_out)


def main(argv):
    if len(argv) >= 7 and argv[1] == "record":
        record(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7:])
    elif len(argv) >= 2 and argv[1] == "meta":
        pairs = (kv.partition("=") for kv in argv[2:])
        print(json.dumps({k: number(v) for k, _, v in pairs}, sort_keys=True))
    elif len(argv) == 5 and argv[1] == "summarise":
        sys.stdout.write(summarise(argv[2], argv[3], argv[4]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
