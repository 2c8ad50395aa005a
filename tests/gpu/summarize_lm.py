"""The model stages' short table for tests/gpu/run.sh: training throughput (ours against the
PyTorch reference), parity errors, the 300-step verdict, the kill test's and `train --gpus`'s
verdicts and the checkpoint benchmark, the scaling ladder and decode latency, from lm.jsonl.

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

    # One model may run at several shapes (BENCH_SPECS): pair the two sides by model and shape.
    def run_key(r):
        return (r["name"], r["batch_size"], r["seq_len"])

    ours = {run_key(r): r for r in by_stage.get("bench_ours", [])}
    refs = {run_key(r): r for r in by_stage.get("bench_reference", [])}
    if ours or refs:
        print(f"{'bench train':<28} {'impl':<10} {'batch':>9} {'tokens/s':>11} {'step ms':>9} {'peak GiB':>9} {'MFU':>7}")
        for key in sorted(set(ours) | set(refs)):
            o, r = ours.get(key), refs.get(key)
            name = key[0]
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

    for r in by_stage.get("kill", []):
        kills = r["kills"]
        print(f"\nkill test ({r['model']} on {r['device']}, deterministic, {r['steps']} steps): {'ok' if r['ok'] else 'FAIL'}: "
              f"{len(kills)} SIGKILLs ({r['inside_writes']} inside checkpoint writes), {r['attempts']} attempts, {r['seconds']:.0f} s; "
              f"{'bit-identical to the uninterrupted run' if not r['differences'] else 'differs: ' + '; '.join(r['differences'][:3])}"
              f"{'' if not r['unreadable'] else '; unreadable: ' + '; '.join(r['unreadable'][:3])}")

    for r in by_stage.get("train_gpus", []):
        if not r["run"]:
            print(f"\ntrain --gpus {r['gpus']}: NOT RUN ({r['verdict']})")
            continue
        print(f"\ntrain --gpus {r['gpus']} ({r['model']}, {r['precision']}, deterministic, {r['steps']} steps; {r['nccl']}): {r['verdict']}")
        print(f"  window means against one GPU: max rel diff {fmt(r['window_mean_rel_diff_max'], '.4f')} (tolerance {r['tolerance']}); "
              f"first loss {fmt(r['first_loss_gpus'], '.5f')} vs {fmt(r['first_loss_one_gpu'], '.5f')}; median tokens/s "
              f"{fmt(r['median_tokens_per_s_gpus'], '.0f')} on {r['gpus']} GPUs vs {fmt(r['median_tokens_per_s_one_gpu'], '.0f')} on one")

    for r in by_stage.get("checkpoint_bench", []):
        write, load = r["checkpoint_write_s"], r["checkpoint_load_s"]
        print(f"\ncheckpoint {r['model']}/{r['size']} ({r['checkpoint_bytes'] / 2**30:.1f} GiB): write {', '.join(f'{s:.1f}' for s in write)} s "
              f"({r['checkpoint_write_gib_per_s']:.2f} GiB/s), load {', '.join(f'{s:.1f}' for s in load)} s")
        g = r["cuda_graph_steps"]
        print(f"  guard: step {r['trainer_step_ms']:.1f} ms through the trainer vs {r['engine_step_ms']:.1f} ms bare "
              f"({r['guard_host_ms_per_step']:+.2f} ms; bookkeeping {r['guard_bookkeeping_us_per_step']:.2f} us); "
              f"graph-replayed steps {g['trainer']}/{g['of']} (bare {g['engine']}/{g['of']}); a skipped step {r['skipped_step_ms']:.1f} ms "
              f"(skipped {r['skipped_step']['skipped']}, graph {r['skipped_step']['cuda_graph']})")

    scaling = by_stage.get("scaling_bench", [])
    if scaling:
        base = scaling[0]["tokens_per_s"]
        print(f"\n{'bench train --scaling':<28} {'batch':>12} {'tokens/s':>11} {'vs first':>9} {'peak GiB':>9}")
        for r in scaling:
            print(f"{r['name']:<28} {r['batch_size']:>5}x{r['seq_len']:<6} {r['tokens_per_s']:11.0f} {r['tokens_per_s'] / base:9.2f} "
                  f"{fmt(r.get('peak_mem_gib'), '9.2f')}")

    anchor = {(r["model"], r["length"]): r["ms_per_token"] for r in by_stage.get("generate_anchor", []) if r.get("cuda_graphs")}
    for r in by_stage.get("generate_bench", []):
        ms, a = r["ms_per_token"], anchor.get((r["model"], r["prompt_tokens"]))
        versus = "" if a is None else f", mamba_ssm cg {a:.3f} ms: {ms / a:.2f}x"
        print(f"generate {r['model']:<16} prompt {r['prompt_tokens']:>5}: {ms:.3f} ms/token (graph {r['cuda_graphs']}){versus}")

if __name__ == "__main__":
    main()
