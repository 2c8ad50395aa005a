"""One decode token's kernels from an Nsight Compute CSV (bench/profile-decode.sh), by name.

A token ends with the greedy argmax kernel; the last complete token is summarised, beside the
ms/token `mambalab bench generate` measured without the profiler. Timed alone, a kernel also
pays the ramp a replayed graph overlaps with its neighbours, so the sum can exceed the token.
"""
import csv
import re
import json
import sys
from collections import OrderedDict


def short_name(full):
    """'void ml::cuda::<unnamed>::gemv_kernel<1, bf16, bf16>(long, ...)' -> 'gemv_kernel<1, bf16, bf16>'."""
    name = full.replace("(anonymous namespace)", "").replace("<unnamed>", "").removeprefix("void ")
    name = re.split(r"\((?![^<]*>)", name)[0]  # the parameter list (not a '(' inside template arguments)
    head, _, args = name.partition("<")
    return head.split("::")[-1] + ("<" + args if args else "")


def kernels(path):
    """[(name, us, dram bytes read or None)] in launch order, one per profiled kernel (ncu's ID)."""
    with open(path) as f:
        lines = [l for l in f if l.startswith('"')]  # ncu's own messages come before the table
    by_id = OrderedDict()
    for r in csv.DictReader(lines):
        k = by_id.setdefault(r["ID"], {"name": short_name(r["Kernel Name"]), "us": None, "bytes": None})
        value = float(r["Metric Value"].replace(",", ""))
        unit = r["Metric Unit"]
        if r.get("Metric Name") == "gpu__time_duration.sum":
            k["us"] = value * {"ns": 1e-3, "nsecond": 1e-3, "ms": 1e3, "msecond": 1e3}.get(unit, 1.0)
        elif r.get("Metric Name") == "dram__bytes_read.sum":
            k["bytes"] = value * {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}.get(unit, 1.0)
    return [(k["name"], k["us"], k["bytes"]) for k in by_id.values() if k["us"] is not None]


def main():
    csv_path, plain_path, model = sys.argv[1:4]
    ks = kernels(csv_path)
    ends = [i for i, (name, _, _) in enumerate(ks) if "argmax" in name]
    if len(ends) < 2:
        print(f"{model}: fewer than two argmax kernels in {csv_path}; no whole token to summarise")
        return
    token = ks[ends[-2] + 1 : ends[-1] + 1]
    by_name = OrderedDict()
    for name, us, read in token:
        n, total, total_read = by_name.get(name, (0, 0.0, 0.0))
        by_name[name] = (n + 1, total + us, total_read + (read or 0.0))
    plain = [json.loads(l) for l in open(plain_path) if l.strip()]
    ms = plain[0]["ms_per_token"] if plain else float("nan")
    kernel_us = sum(us for _, us, _ in token)
    print(f"## {model}: measured {ms * 1000:.1f} us/token; its {len(token)} kernels, each timed alone, sum to {kernel_us:.1f} us")
    print(f"   {'kernel':44s} {'count':>5s} {'total us':>9s} {'us each':>8s} {'MB each':>8s} {'TB/s':>6s}")
    for name, (n, total, read) in sorted(by_name.items(), key=lambda kv: -kv[1][1]):
        rate = f"{read / total / 1e6:6.2f}" if read else "     -"
        print(f"   {name[:44]:44s} {n:5d} {total:9.1f} {total / n:8.2f} {read / n / 1e6:8.2f} {rate}")


if __name__ == "__main__":
    main()
