"""Per-kernel GPU time of a command, from ncu's CSV (gpu__time_duration per launch), summed by
kernel name: which kernels a training step spends its time in. Used on the GPU host, where
Nsight Systems is absent but Nsight Compute is there.

    ncu --csv --metrics gpu__time_duration.sum --clock-control none <command> > launches.csv
    python3 bench/native/kernel_times.py launches.csv [--top 25] [--per N]
"""
import argparse
import csv
import re
from collections import defaultdict


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--per", type=float, default=1.0, help="divide times by this (e.g. steps profiled)")
    args = parser.parse_args()
    with open(args.csv) as f:
        lines = [l for l in f if l.startswith('"')]
    rows = list(csv.DictReader(lines))
    totals, counts = defaultdict(float), defaultdict(int)
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = re.sub(r"\(.*", "", r["Kernel Name"])[:90]
        value = float(r["Metric Value"].replace(",", ""))
        scale = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0}
        totals[name] += value * scale.get(r.get("Metric Unit", "ns"), 1e-6)
        counts[name] += 1
    total = sum(totals.values())
    print(f"{len(rows)} launches, {total / args.per:.1f} ms of kernel time per step")
    for name, t in sorted(totals.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{100 * t / total:5.1f}% {t / args.per:8.2f} ms  n={counts[name] / args.per:6.0f}  {name}")


if __name__ == "__main__":
    main()
