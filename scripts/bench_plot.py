#!/usr/bin/python3
"""Tables and plot of one scripts/bench.sh run.

Usage: /usr/bin/python3 scripts/bench_plot.py --dir RESULTS/<timestamp>

Reads raw.csv (round,peer,metric,value: every FUSE and memory figure of every round),
raw/s3-{minio,ssefs}-r*.json (s3bench -json), s3bench-summary.md (s3bench -summarize) and
meta.txt from the results directory; prints the tables of medians with ssefs' ratios and the
issue's targets on stdout, writes the same to table.md (plus each figure's min-max and
s3bench's own summary) and draws bench.png (Debian's python3-matplotlib; without it the plot is
skipped with a note). Only the standard library otherwise.
"""

import argparse
import csv
import glob
import json
import os
import statistics
import sys

FUSE = [  # metric, column title, target ratio vs gocryptfs, target ratio vs loopback
    ("seq_write_MBps", "seq write MB/s", 1.5, 0.85),
    ("seq_read_MBps", "seq read MB/s (cold)", 2.0, None),
    ("rand_write_iops", "rand write 4k IOPS", 2.0, None),
    ("rand_read_iops", "rand read 4k IOPS (cold)", 1.5, None),
    ("create_fps", "create files/s", 1.2, None),
    ("ls_fps", "ls -lR files/s (cold)", 1.2, None),
    ("delete_fps", "delete files/s", 1.2, None),
]
PEERS = ["ssefs", "gocryptfs", "securefs", "loopback", "memfs", "disk"]
MEM = [("mem_parallel", "{writers} files of {file_mib} MiB written at once"),
       ("mem_big", "one {big_gib} GiB file written in")]


def fmt(v):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def mark(ratio, target):
    if ratio is None:
        return "–"
    if target is None:
        return f"{ratio:.2f}"
    return f"{ratio:.2f} {'met' if ratio >= target else 'MISSED'} (≥{target:g})"


def md_table(head, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(head) - 1)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    d = a.dir
    meta = {}
    if os.path.exists(os.path.join(d, "meta.txt")):
        for line in open(os.path.join(d, "meta.txt")):
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v

    vals = {}  # (peer, metric) -> [values]
    with open(os.path.join(d, "raw.csv")) as f:
        for row in csv.DictReader(f):
            vals.setdefault((row["peer"], row["metric"]), []).append(float(row["value"]))

    def med(peer, metric):
        v = vals.get((peer, metric))
        return statistics.median(v) if v else None

    def spread(peer, metric):
        v = vals.get((peer, metric))
        if not v:
            return "–"
        return f"{fmt(statistics.median(v))} ({fmt(min(v))}–{fmt(max(v))}, n={len(v)})"

    def ratio(a, b):
        return a / b if a is not None and b else None

    names = {
        "ssefs": "ssefs",
        "gocryptfs": "gocryptfs " + meta.get("gocryptfs", "").replace("gocryptfs ", "").split(";")[0],
        "securefs": "securefs " + meta.get("securefs", "").split("+")[0],
        "loopback": f"go-fuse {meta.get('go_fuse', '')} loopback (no crypto)",
        "memfs": f"go-fuse {meta.get('go_fuse', '')} in memory (floor: small files only, ls not cold)",
        "disk": "the disk itself (backing filesystem, no FUSE, no crypto)",
    }
    peers = [p for p in PEERS if any(k[0] == p and k[1] in dict((m[0], 1) for m in FUSE) for k in vals)]
    rounds = meta.get("rounds", "?")
    out = []  # Markdown, printed and written
    title = (f"# ssefs benchmark {meta.get('date_utc', '')}\n\n"
             f"commit {meta.get('commit', '?')} (+{meta.get('uncommitted_files', '?')} uncommitted files), "
             f"{meta.get('cpu', '?')}, {meta.get('mem_gib', '?')} GiB RAM, kernel {meta.get('kernel', '?')}, "
             f"disk {meta.get('disk', '?')}; {meta.get('go', '')}, {meta.get('fio', '')}; "
             f"run took {int(meta.get('elapsed_s', 0)) // 60} min.\n")
    out.append(title)
    load = [v for (p, m), vs in vals.items() if m == "loadavg_1m" for v in vs]
    if load:
        out.append(f"Machine load (1-minute load average as each part started, {meta.get('ncpu', '?')} CPUs): "
                   f"median {statistics.median(load):.1f}, range {min(load):.1f}–{max(load):.1f}. "
                   "Other work on the machine moves absolute figures; ratios within a run hold better.\n")

    if peers:
        out.append(f"## FUSE: medians of {rounds} rounds\n")
        out.append(f"fio {meta.get('seq_mib')} MiB sequential (bs 1 MiB, end_fsync), 4 KiB random on "
                   f"{meta.get('rand_mib')} MiB for {meta.get('rand_secs')} s (psync, depth 1, end_fsync "
                   f"for writes), {meta.get('nfiles')} files of {meta.get('file_bytes')} B "
                   f"({meta.get('per_dir')} a directory); cold = remounted and caches dropped. "
                   "MB/s are 10^6 bytes/s.\n")
        head = ["peer"] + [m[1] for m in FUSE]
        rows = [[names[p]] + [fmt(med(p, m[0])) for m in FUSE] for p in peers]
        if "ssefs" in peers and "gocryptfs" in peers:
            rows.append(["**ssefs / gocryptfs**"] + [
                mark(ratio(med("ssefs", m[0]), med("gocryptfs", m[0])), m[2]) for m in FUSE])
        if "ssefs" in peers and "loopback" in peers:
            rows.append(["**ssefs / loopback**"] + [
                mark(ratio(med("ssefs", m[0]), med("loopback", m[0])), m[3]) for m in FUSE])
        out.append(md_table(head, rows) + "\n")

    mem_rows = []
    for key, label in MEM:
        if ("ssefs", key + "_rss_MiB") not in vals:
            continue
        rss = med("ssefs", key + "_rss_MiB")
        lbl = label.format(writers=meta.get("mem_writers", "?"), file_mib=meta.get("mem_file_mib", "?"),
                           big_gib=meta.get("big_gib", "?"))
        lim = float(meta.get("rss_limit_mib", 512))
        v = vals[("ssefs", key + "_rss_MiB")]
        mem_rows.append([lbl, f"{rss:.0f}", f"{min(v):.0f}–{max(v):.0f}", fmt(med("ssefs", key + "_MBps")),
                         f"{'met' if max(v) < lim else 'MISSED'} (< {lim:.0f} MiB in every round)"])
    if mem_rows:
        out.append("## ssefs memory: peak resident set (VmHWM of a fresh mount, default flags)\n")
        out.append(md_table(["workload", "peak RSS MiB (median)", "min–max", "MB/s", "target"], mem_rows) + "\n")

    # S3
    s3 = {"minio": [], "ssefs": []}
    for f in sorted(glob.glob(os.path.join(d, "raw", "s3-*-r*.json"))):
        s = os.path.basename(f).split("-")[1]
        if s in s3:
            s3[s].append(json.load(open(f)))
    combos, tp = [], None
    if s3["minio"] or s3["ssefs"]:
        def tp(s, op, size, conc):
            v = [t["mbps"] for r in s3[s] for t in r["throughput"]
                 if t["op"] == op and t["size"] == size and t["conc"] == conc]
            return statistics.median(v) if v else None

        def lat(s, op, field):
            v = [l[field] for r in s3[s] for l in r["latency"] if l["op"] == op]
            return statistics.median(v) if v else None
        ref = (s3["minio"] or s3["ssefs"])[0]
        combos = [(t["size"], t["conc"]) for t in ref["throughput"] if t["op"] == "PUT"]
        n = max(len(s3["minio"]), len(s3["ssefs"]))
        out.append(f"## S3: ssefs serve vs MinIO (single drive, SSE-S3 with a static KMS key), s3bench, "
                   f"medians of {n} rounds\n")
        rows = []
        for size, conc in combos:
            mib = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
            r = [mib, str(conc)]
            for op in ("PUT", "GET"):
                m, s = tp("minio", op, size, conc), tp("ssefs", op, size, conc)
                r += [fmt(m), fmt(s), mark(ratio(s, m), 1.0)]
            rows.append(r)
        out.append(md_table(["object", "clients", "MinIO PUT MB/s", "ssefs PUT MB/s", "PUT ssefs/MinIO",
                             "MinIO GET MB/s", "ssefs GET MB/s", "GET ssefs/MinIO"], rows) + "\n")
        lrows = []
        for op in ("PUT", "GET"):
            size = next((l["size"] for l in ref["latency"] if l["op"] == op), None)
            if size is None:
                continue
            r = [f"{size >> 10} KiB {op}, 1 client"]
            for field in ("p50_ms", "p99_ms"):
                m, s = lat("minio", op, field), lat("ssefs", op, field)
                r += [f"{m:.3f}" if m is not None else "–", f"{s:.3f}" if s is not None else "–",
                      f"{s / m:.2f}" if m and s is not None else "–"]
            lrows.append(r)
        if lrows:
            out.append(md_table(["latency", "MinIO p50 ms", "ssefs p50 ms", "p50 ssefs/MinIO",
                                 "MinIO p99 ms", "ssefs p99 ms", "p99 ssefs/MinIO"], lrows) + "\n")

    failures = os.path.join(d, "failures.txt")
    if os.path.exists(failures) and os.path.getsize(failures):
        out.append("## Failed parts (figures missing above)\n")
        out.append("".join("- " + l for l in open(failures)))

    text = "\n".join(out)
    print(text)

    # table.md: the same, plus the spread of every figure and s3bench's own summary.
    extra = []
    if peers:
        extra.append("## FUSE: median (min–max, rounds) of every figure\n")
        extra.append(md_table(["peer"] + [m[1] for m in FUSE],
                              [[names[p]] + [spread(p, m[0]) for m in FUSE] for p in peers]) + "\n")
    summ = os.path.join(d, "s3bench-summary.md")
    if os.path.exists(summ) and os.path.getsize(summ):
        extra.append("## s3bench -summarize -base minio-sse (verbatim)\n")
        extra.append(open(summ).read())
    extra.append("## Run parameters\n\n```\n" + "".join(open(os.path.join(d, "meta.txt")).readlines()) + "```\n")
    with open(os.path.join(d, "table.md"), "w") as f:
        f.write(text + "\n" + "\n".join(extra))

    both = bool(s3["minio"] and s3["ssefs"])
    plot(d, peers, names, med, FUSE, tp if both else None, combos if both else [], rounds)


def plot(d, peers, names, med, fuse, tp, combos, rounds):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(bench.png skipped: no matplotlib for %s; apt-get install python3-matplotlib)" % sys.executable)
        return
    fuse_ok = "gocryptfs" in peers and len(peers) > 1
    panels = int(fuse_ok) + int(bool(combos))
    if panels == 0:
        return
    fig, axes = plt.subplots(panels, 1, figsize=(13, 5 * panels), squeeze=False)
    colors = {"ssefs": "#d62728", "gocryptfs": "#1f77b4", "securefs": "#2ca02c", "loopback": "#7f7f7f", "memfs": "#bcbd22", "disk": "#17becf",
              "minio": "#1f77b4"}
    cap = 6.0
    i = 0
    if fuse_ok:
        ax = axes[i][0]
        i += 1
        w = 0.8 / len(peers)
        for k, p in enumerate(peers):
            xs, ys = [], []
            for j, m in enumerate(fuse):
                g, v = med("gocryptfs", m[0]), med(p, m[0])
                if g and v is not None:
                    xs.append(j - 0.4 + w * (k + 0.5))
                    ys.append(v / g)
            bars = ax.bar(xs, [min(y, cap) for y in ys], w, label=names[p], color=colors[p])
            for x, y in zip(xs, ys):
                if p == "ssefs" or y > cap:
                    ax.text(x, min(y, cap) + 0.05, f"{y:.2f}", ha="center", va="bottom", fontsize=7)
        for j, m in enumerate(fuse):
            ax.hlines(m[2], j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1)
        ax.axhline(1.0, color="#1f77b4", linewidth=0.5)
        ax.set_xticks(range(len(fuse)))
        ax.set_xticklabels([m[1] for m in fuse], fontsize=8)
        ax.set_ylabel("relative to gocryptfs = 1")
        ax.set_ylim(0, cap + 0.5)
        ax.set_title(f"FUSE workloads, medians of {rounds} rounds (dashed: ssefs' target vs gocryptfs; "
                     f"bars above {cap:g} are cut)", fontsize=10)
        ax.legend(fontsize=8)
    if combos:
        ax = axes[i][0]
        labels, ys = [], []
        for op in ("PUT", "GET"):
            for size, conc in combos:
                m, s = tp("minio", op, size, conc), tp("ssefs", op, size, conc)
                labels.append(f"{op} {size >> 20} MiB x{conc}")
                ys.append(s / m if m and s is not None else 0)
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], [1.0] * len(labels), 0.4, label="MinIO SSE-S3", color=colors["minio"])
        ax.bar([x + 0.2 for x in xs], ys, 0.4, label="ssefs serve", color=colors["ssefs"])
        for x, y in zip(xs, ys):
            ax.text(x + 0.2, y + 0.03, f"{y:.2f}", ha="center", va="bottom", fontsize=7)
        ax.axhline(1.0, color="black", linestyle="dashed", linewidth=1)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("relative to MinIO = 1")
        ax.set_title("S3 throughput, s3bench (dashed: target, ssefs >= MinIO)", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "bench.png"), dpi=110)


if __name__ == "__main__":
    main()
