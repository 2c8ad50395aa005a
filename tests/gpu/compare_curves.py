"""Compares the loss curves of tests/gpu/train-compare.sh's runs (JSON lines of `mambalab
train --json`, one per step) and prints one JSON verdict line.

    python3 tests/gpu/compare_curves.py --cpu cpu.jsonl --cuda cuda.jsonl \
        [--deterministic a.jsonl b.jsonl] [--window 25] [--tolerance 0.02]

The curves see the same batches in the same order (same seed), so they differ only by
arithmetic: fp32 on the CPU, bf16 on the GPU. Per-step losses are noisy (each step is a
different batch) but that noise is common to both runs; the check is on windowed means:
the CUDA run tracks the CPU run when every window's mean loss is within `tolerance`
(relative) of the CPU's, the last window included. The deterministic pair must match
bit for bit (the JSON numbers are the engine's doubles, printed exactly).
"""
import argparse
import datetime
import json
import statistics


def losses(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip().startswith("{")]
    return [r["loss"] for r in sorted(rows, key=lambda r: r["step"])]


def windows(values, size):
    return [statistics.fmean(values[i:i + size]) for i in range(0, len(values) - size + 1, size)]


def compare_tracks(cpu, cuda, size, tolerance):
    steps = min(len(cpu), len(cuda))
    size = max(1, min(size, steps))  # a short trial run still gets one window
    cpu_means, cuda_means = windows(cpu[:steps], size), windows(cuda[:steps], size)
    relative = [abs(g - c) / abs(c) for c, g in zip(cpu_means, cuda_means)]
    # Step-to-step noise of the CPU curve around its window means: the scale of "noise".
    noise = statistics.pstdev([x - cpu_means[i // size] for i, x in enumerate(cpu[:len(cpu_means) * size])]) if cpu_means else None
    return {
        "steps_compared": steps,
        "window": size,
        "window_mean_rel_diff_max": max(relative) if relative else None,
        "window_mean_rel_diff_last": relative[-1] if relative else None,
        "final_window_loss_cpu": cpu_means[-1] if cpu_means else None,
        "final_window_loss_cuda": cuda_means[-1] if cuda_means else None,
        "first_loss_cpu": cpu[0] if cpu else None,
        "first_loss_cuda": cuda[0] if cuda else None,
        "per_step_abs_diff_mean": statistics.fmean(abs(a - b) for a, b in zip(cpu, cuda)) if steps else None,
        "cpu_step_noise_std": noise,
        "tolerance": tolerance,
        "tracks": bool(relative) and max(relative) <= tolerance,
    }


def compare_identical(a, b):
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    same_length = len(a) == len(b)
    return {
        "deterministic_steps": min(len(a), len(b)),
        "deterministic_identical": first is None and same_length and len(a) > 0,
        "deterministic_first_difference_step": None if first is None else first + 1,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", required=True)
    parser.add_argument("--cuda", required=True)
    parser.add_argument("--deterministic", nargs=2, metavar=("A", "B"))
    parser.add_argument("--window", type=int, default=25)
    parser.add_argument("--tolerance", type=float, default=0.02, help="relative difference of window means")
    parser.add_argument("--gpu", default=None, help="the GPU's name, recorded with the result")
    args = parser.parse_args()
    cpu, cuda = losses(args.cpu), losses(args.cuda)
    result = {"name": "train_compare", "gpu": args.gpu, "date": datetime.date.today().isoformat(),
              **compare_tracks(cpu, cuda, args.window, args.tolerance)}
    if args.deterministic:
        result.update(compare_identical(*(losses(p) for p in args.deterministic)))
    verdicts = ["tracks the CPU run" if result["tracks"] else "does NOT track the CPU run"]
    if args.deterministic:
        verdicts.append("deterministic reruns identical" if result["deterministic_identical"] else "deterministic reruns DIFFER")
    result["verdict"] = "; ".join(verdicts)
    result["ok"] = result["tracks"] and result.get("deterministic_identical", True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
