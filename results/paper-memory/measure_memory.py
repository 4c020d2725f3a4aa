"""Peak memory of ONE distillation update in the paper's setting (RoBERTa-large teacher -> 6x512 student, windows
of 384 tokens, all four loss terms, shared projection), measured on CPU in fp32 at batch 1, 2 and 4, extrapolated
linearly to choose micro-batch and gradient accumulation on a GPU at the paper's effective batch of 32.

Method: each batch size runs in a fresh subprocess (`--child B`), so peaks never mix. It builds both models from
kit.paper.paper_configs() (random weights), DistillLoss and a fused AdamW over the trainable parameters (as
kit.train), then runs a warm-up update at batch 1 without zero_grad, so Adam's state and the .grad tensors exist
before the measured update, as in a micro-step of gradient accumulation (the worst case). The measured update
(forward, backward, AdamW step, zero_grad) runs under a TorchDispatchMode that sees every ATen op of forward,
backward and optimiser: it counts each storage an op returns (once, however many views), starting from the
storages already alive (weights, grads, Adam state, batch); weakref.finalize on the storage uncounts it when it is
freed. Its peak of live tensor bytes is what a GPU allocator must hold at least; it also notes the part in LxL
attention-shaped tensors. RSS (ru_maxrss; /proc/self/statm just before the update, after gc and malloc_trim) is a
cross-check. peak(b) = fixed + per_window * b is fitted on b = 2 and 4; b = 1 checks the line.
Run from the repository root: .venv/bin/python results/paper-memory/measure_memory.py  (writes memory.json)
and, for the teacher computing only what the layer map reads against everything, `... measure_memory.py
--teacher-outputs` (writes teacher_outputs.json)
"""
import ctypes, gc, json, os, platform, resource, subprocess, sys, time, weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))                        # the kit package
L, GiB, BATCHES, EFFECTIVE, MARGIN = 384, 2 ** 30, (1, 2, 4), 32, 1.0  # MARGIN GiB: CUDA context, fragmentation
GPUS = {"T4": 14.0, "A100-40GB": 39.0}               # usable GiB (an A100-40GB reports ~39.6 GiB)


class LiveBytes(TorchDispatchMode):
    """Peak of live tensor bytes while active, counted by storage."""
    def __init__(self, existing):
        super().__init__()
        self.size, self.attn, self.now, self.peak, self.peak_attn = {}, set(), 0, 0, 0
        for t in existing:
            self.track(t)
        self.baseline = self.now

    def track(self, t):
        st = t.untyped_storage(); key = id(st)
        if key not in self.size:
            weakref.finalize(st, self.drop, key)
        self.now += st.nbytes() - self.size.get(key, 0)   # a new storage, or one an out= kernel resized
        self.size[key] = st.nbytes()
        if t.dim() >= 2 and tuple(t.shape[-2:]) == (L, L):
            self.attn.add(key)
        if self.now > self.peak:
            self.peak, self.peak_attn = self.now, sum(self.size[k] for k in self.attn)

    def drop(self, key):
        self.now -= self.size.pop(key); self.attn.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.track(t)
        return out


def child(b, teacher_outputs="all"):
    from kit.distill import DistillLoss
    from kit.models import build_qa_model
    from kit.paper import paper_configs
    torch.manual_seed(0)
    t_cfg, s_cfg = paper_configs()
    teacher, student = build_qa_model(t_cfg, "eager"), build_qa_model(s_cfg, "eager")
    # uniform map, all four terms, shared 512->1024 projection; memory.json was measured with every teacher map and
    # state ("all", the kit's only way then); "mapped" computes only what the layer map reads (compare_teacher_outputs)
    loss_fn = DistillLoss(teacher, student, teacher_outputs=teacher_outputs)
    trainable = [p for p in [*student.parameters(), *loss_fn.parameters()] if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=3e-5, fused=True)
    batch = lambda n: {"input_ids": torch.randint(5, 50000, (n, L)), "attention_mask": torch.ones(n, L, dtype=torch.long),
                       "start_positions": torch.randint(0, L, (n,)), "end_positions": torch.randint(0, L, (n,))}
    student.train(), loss_fn.train()
    loss_fn(student, batch(1))[0].backward(); opt.step()          # warm-up: Adam state and .grad now exist
    data = batch(b)
    gc.collect(); ctypes.CDLL("libc.so.6").malloc_trim(0)
    rss_before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    existing = [*teacher.parameters(), *teacher.buffers(), *student.parameters(), *student.buffers(),
                *loss_fn.projections.parameters(), *(p.grad for p in trainable), *data.values(),
                *(v for s in opt.state.values() for v in s.values() if torch.is_tensor(v))]
    t0 = time.time()
    with LiveBytes(existing) as live:
        loss, terms = loss_fn(student, data); loss.backward(); opt.step(); opt.zero_grad()
    n = lambda module: sum(p.numel() for p in module.parameters())
    return {"batch": b, "seconds": round(time.time() - t0, 1), "rss_before_update": rss_before,
            "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "live_baseline": live.baseline,
            "live_peak": live.peak, "live_peak_attention_shaped": live.peak_attn,
            "params": {"teacher": n(teacher), "student": n(student), "projection": n(loss_fn.projections)}}


def fit(rows, key):
    (b1, y1), (b2, y2) = [(r["batch"], r[key]) for r in rows if r["batch"] in (2, 4)]
    return y1 - (y2 - y1) / (b2 - b1) * b1, (y2 - y1) / (b2 - b1)


def main():
    rows = []
    for b in BATCHES:                                   # a fresh process each; never batch 32 in fp32
        out = subprocess.run([sys.executable, __file__, "--child", str(b)], check=True, capture_output=True,
                             text=True, cwd=ROOT).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"batch {b}: live peak {rows[-1]['live_peak'] / GiB:.2f} GiB, RSS peak {rows[-1]['rss_peak'] / GiB:.2f} GiB")
    (fixed, per), (rss_fixed, rss_per), (_, attn) = (fit(rows, k) for k in ("live_peak", "rss_peak", "live_peak_attention_shaped"))
    teacher_bytes = rows[0]["params"]["teacher"] * 4
    fixeds = {"teacher_fp32": fixed, "teacher_fp16": fixed - teacher_bytes / 2}
    acts = {"act_fp32": per, "act_fp16": per / 2, "act_fp16_maps_fp32": attn + (per - attn) / 2}
    gib = lambda fx, pw, b: round((fx + pw * b) / GiB, 2)
    cases = {f"{t}_{a}": (fx, pw) for t, fx in fixeds.items() for a, pw in acts.items()}

    def choose(usable, fx, pw):   # the largest divisor of 32 that fits, and the accumulation to reach 32
        b = max([b for b in (1, 2, 4, 8, 16, 32) if gib(fx, pw, b) <= usable - MARGIN], default=None)
        return b and {"batch_size": b, "grad_accum": EFFECTIVE // b, "peak_gib": gib(fx, pw, b)}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / GiB:.0f} GiB RAM, "
                   f"no GPU, {platform.platform()}",
        "torch": torch.__version__, "units": "bytes unless named _gib (GiB = 2**30 bytes)",
        "method": " ".join(__doc__.split("\n\n", 1)[1].split("Run from")[0].split()),
        "params": rows[0]["params"], "measurements": rows,
        "fit_live": {"fixed": fixed, "per_window": per, "per_window_attention_shaped": attn,
                     "fixed_gib": round(fixed / GiB, 3), "per_window_gib": round(per / GiB, 4),
                     "b1_predicted_vs_measured_gib": [gib(fixed, per, 1), round(rows[0]["live_peak"] / GiB, 2)]},
        "fit_rss": {"fixed_gib": round(rss_fixed / GiB, 3), "per_window_gib": round(rss_per / GiB, 4)},
        "gpu_model": (f"fp16 mixed precision (accelerate autocast). Fixed: the measured fixed (teacher weights fp32; student "
                      f"and projection weights, grads and AdamW state fp32), less {teacher_bytes / 2 / GiB:.2f} GiB for "
                      f"teacher_fp16 (teacher cast to fp16). act_fp32: activations as measured. act_fp16: the assumption "
                      f"'fp16 activations are half of fp32's'. act_fp16_maps_fp32: under CUDA autocast softmax runs in fp32 "
                      f"(and the loss calls .float()), so the LxL attention-shaped tensors stay fp32 and only the rest "
                      f"halves: likelier. A micro-batch fits when peak <= usable - {MARGIN} GiB; grad_accum = 32 / b."),
        "extrapolated_gib": {c: {b: gib(fx, pw, b) for b in (8, 16, 32)} for c, (fx, pw) in cases.items()},
        "usable_gib": GPUS, "fits": {g: {c: choose(u, *v) for c, v in cases.items()} for g, u in GPUS.items()},
        "recommended": {g: choose(u, *cases["teacher_fp32_act_fp16_maps_fp32"]) for g, u in GPUS.items()},
        "recommended_case": "teacher_fp32_act_fp16_maps_fp32 (kit.train's default: the teacher stays fp32)",
    }
    (Path(__file__).parent / "memory.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["recommended"]))


def compare_teacher_outputs():
    """The same measured update with the teacher computing every map and state ("all") and only what the layer map
    reads ("mapped"), at batch 1 and 2, each in a fresh process; writes teacher_outputs.json."""
    rows = {}
    for kind in ("all", "mapped"):
        for b in (1, 2):
            out = subprocess.run([sys.executable, __file__, "--child", str(b), kind], check=True, capture_output=True,
                                 text=True, cwd=ROOT).stdout
            rows[(kind, b)] = json.loads(out.strip().splitlines()[-1])
            print(f"{kind} batch {b}: live peak {rows[(kind, b)]['live_peak'] / GiB:.3f} GiB, "
                  f"{rows[(kind, b)]['seconds']} s")
    per_window = {k: rows[(k, 2)]["live_peak"] - rows[(k, 1)]["live_peak"] for k in ("all", "mapped")}
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU", "torch": torch.__version__,
              "method": "as memory.json (one update, live tensor bytes), fp32 on the CPU, 2 threads; 'seconds' is one "
                        "update under the counting dispatch mode (slower than plain: compare the two kinds only)",
              "measurements": [{"teacher_outputs": k, **r} for (k, _), r in rows.items()],
              "per_window_bytes": per_window,
              "per_window_saved_mb": round((per_window["all"] - per_window["mapped"]) / 2 ** 20, 1),
              "per_window_saved_share": round(1 - per_window["mapped"] / per_window["all"], 3),
              "seconds_ratio_mapped_over_all": {b: round(rows[("mapped", b)]["seconds"] / rows[("all", b)]["seconds"], 3)
                                               for b in (1, 2)}}
    (Path(__file__).parent / "teacher_outputs.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("per_window_saved_mb", "per_window_saved_share",
                                              "seconds_ratio_mapped_over_all")}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        torch.set_num_threads(2)
        print(json.dumps(child(int(sys.argv[2]), *sys.argv[3:4])))
    elif sys.argv[1:2] == ["--teacher-outputs"]:
        compare_teacher_outputs()
    else:
        main()
