"""Drives one kernel over the Jupyter protocol with jupyter_client, for tests/jupyter/*.test.ts.

Reads a JSON script on stdin: {"kernel": name, "cwd": dir, "steps": [...]}, each step one of
  {"op": "execute", "code": str, "timeout": s, "interrupt_after_updates": n, "interrupt_after_s": s}
  {"op": "restart"}
and prints one JSON object: {"kernel_info": ..., "steps": [{"op", "reply", "messages"}...]}, where
messages are the step's iopub messages (msg_type, content, date) in arrival order. With
interrupt_after_updates, the kernel is interrupted (as JupyterLab does: SIGINT, the spec's
interrupt_mode) once that many update_display_data messages arrived; with interrupt_after_s,
that many seconds after the request.
"""

import json
import queue
import sys
import time

from jupyter_client.manager import KernelManager


def collect(km, kc, step):
    msg_id = kc.execute(step["code"])
    started = time.time()
    deadline = time.time() + step.get("timeout", 120)
    messages, updates, interrupted_at = [], 0, None
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise TimeoutError(f"no idle status within {step.get('timeout', 120)} s for: {step['code'][:80]}")
        after_s = step.get("interrupt_after_s")
        if after_s is not None and interrupted_at is None and time.time() - started >= after_s:
            km.interrupt_kernel()
            interrupted_at = time.time()
        try:
            msg = kc.get_iopub_msg(timeout=min(remaining, 0.1))
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        messages.append({"msg_type": kind, "content": msg["content"], "date": msg["header"]["date"].isoformat()})
        if kind == "update_display_data":
            updates += 1
            wanted = step.get("interrupt_after_updates")
            if wanted is not None and interrupted_at is None and updates >= wanted:
                km.interrupt_kernel()
                interrupted_at = time.time()
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    if reply["content"]["status"] != "ok":
        # tslab drops requests that arrive within 200 ms of a failed cell (it aborts the
        # queue); a person never types that fast, a script does.
        time.sleep(0.3)
    out = {"op": "execute", "reply": reply["content"], "messages": messages}
    if interrupted_at is not None:
        out["interrupt_to_idle_s"] = time.time() - interrupted_at
    return out


def main():
    script = json.load(sys.stdin)
    km = KernelManager(kernel_name=script.get("kernel", "mambalab"))
    km.start_kernel(cwd=script["cwd"])
    kc = km.client()
    kc.start_channels()
    results = {"steps": []}
    try:
        kc.wait_for_ready(timeout=60)
        kc.kernel_info()
        info = kc.get_shell_msg(timeout=30)
        results["kernel_info"] = info["content"]
        for step in script["steps"]:
            if step["op"] == "execute":
                results["steps"].append(collect(km, kc, step))
            elif step["op"] == "restart":
                started = time.time()
                km.restart_kernel(now=False)
                kc.wait_for_ready(timeout=60)
                results["steps"].append({"op": "restart", "seconds": time.time() - started, "alive": km.is_alive()})
            else:
                raise ValueError(f"unknown op {step['op']}")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    main()
