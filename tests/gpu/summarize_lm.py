"""The model stages' short table for tests/gpu/run.sh: training throughput (ours against the
PyTorch reference), parity errors and the 300-step verdict, from lm.jsonl.

    python3 tests/gpu/summarize_lm.py lm.jsonl

The reference's MFU is not measured: it is ours scaled by the throughput ratio, which uses
our FLOP count for the same model and shape (labelled "derived"); only when both ran at the
same batch.
"""
import json
import sys


def fmt(value, spec):
    """format(value, spec), or a dash as wide as the spec's width."""
    return format("-", ">" + spec.split(".")[0]) if value is None else format(value, spec)


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    by_stage = {}
    for r in rows:
        by_stage.setdefault(r["stage"], []).append(r)

    ours = {r["name"]: r for r in by_stage.get("bench_ours", [])}
    refs = {r["name"]: r for r in by_stage.get("bench_reference", [])}
    if ours or refs:
        print(f"{'bench train':<28} {'impl':<10} {'batch':>9} {'tokens/s':>11} {'step ms':>9} {'peak GiB':>9} {'MFU':>7}")
        for name in sorted(set(ours) | set(refs)):
            o, r = ours.get(name), refs.get(name)
            if o:
                print(f"{name:<28} {'mambalab':<10} {o['batch_size']:>4}x{o['seq_len']:<4} {fmt(o.get('tokens_per_s'), '11.0f')} "
                      f"{fmt(o.get('step_ms'), '9.1f')} {fmt(o.get('peak_mem_gib'), '9.2f')} {fmt(o.get('mfu'), '7.3f')}")
            if r:
                derived = None
                if o and o.get("mfu") is not None and r.get("tokens_per_s") and o["batch_size"] == r["batch_size"]:
                    derived = o["mfu"] * r["tokens_per_s"] / o["tokens_per_s"]
                print(f"{'':<28} {'pytorch':<10} {r['batch_size']:>4}x{r['seq_len']:<4} {fmt(r.get('tokens_per_s'), '11.0f')} "
                      f"{fmt(r.get('step_ms'), '9.1f')} {fmt(r.get('peak_mem_gib'), '9.2f')} {fmt(derived, '7.3f')}"
                      f"{'' if derived is None else ' (derived)'}")
                if o and r.get("tokens_per_s"):
                    print(f"{'':<28} ours / reference: {o['tokens_per_s'] / r['tokens_per_s']:.1f}x tokens/s"
                          f"{'' if o['batch_size'] == r['batch_size'] else ' (different batches: see the note)'}")
                if r.get("note"):
                    print(f"{'':<28} reference note: {r['note']}")

    parity = by_stage.get("parity", [])
    if parity:
        print(f"\n{'LM parity':<20} {'prec':<5} {'loss err':>9} {'worst grad err':>14}  worst parameter")
        for r in parity:
            status = ("ok" if r["ok"] else "FAIL: " + "; ".join(r["failures"])) + "".join("; " + n for n in r.get("notes", []))
            print(f"{r['case']:<20} {r['precision']:<5} {r['loss_rel_error']:9.2e} {r['worst_grad_rel_error']:14.2e}  {r['worst_parameter']}  {status}")

    for r in by_stage.get("train300", []):
        print(f"\n300 steps ({r['model']}, {r['steps_compared']} compared, windows of {r['window']}): {r['verdict']}")
        print(f"  window means: max rel diff {fmt(r['window_mean_rel_diff_max'], '.4f')}, last {fmt(r['window_mean_rel_diff_last'], '.4f')} "
              f"(tolerance {r['tolerance']}); final window loss CPU {fmt(r['final_window_loss_cpu'], '.4f')} vs GPU {fmt(r['final_window_loss_cuda'], '.4f')}; "
              f"CPU step noise std {fmt(r['cpu_step_noise_std'], '.4f')}")
        first = r.get("deterministic_first_difference_step")
        print(f"  deterministic reruns ({'--deterministic' if r['deterministic_flag'] else 'CLI without --deterministic'}): "
              f"{'identical' if r.get('deterministic_identical') else f'differ from step {first}'} over {r.get('deterministic_steps')} steps")


if __name__ == "__main__":
    main()
