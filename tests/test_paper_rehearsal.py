"""The `paper` profile rehearsed offline, as a Colab user runs it: `python -m kit reproduce --profile paper`.

A stand-in hub (a tiny RoBERTa with the teacher's 24 layers and 16 heads, so that the paper's 6-layer student and
its layer map apply, saved under the teacher's hub id in a Hugging Face cache, the hub set offline) and small
SQuAD-es-shaped files served from 127.0.0.1 with the public files' paths ($KIT_SQUAD_ES_URL). The budget shrinks
data and epochs only: the profile's name, its evaluate-only teacher and the runs root ($KIT_RUNS, a Drive folder
on Colab) are the real ones. The run is killed in the middle of the student's training and resumed."""
import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kit.train import read_log

ROOT = Path(__file__).resolve().parents[1]
TEACHER = "stevemobs/roberta-large-fine-tuned-squad-es"


def squad_v11(articles):
    """The kit's generated articles as SQuAD v1.1 (answerable questions only, as the public files)."""
    out = []
    for a in articles:
        paragraphs = [{"context": p["context"], "qas": [{"id": q["id"], "question": q["question"], "answers": q["answers"]}
                                                        for q in p["qas"] if not q.get("is_impossible")][:3]}
                      for p in a["paragraphs"][:1]]
        out.append({"title": a["title"], "paragraphs": paragraphs})
    return {"version": "1.1", "data": out}


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    from kit.models import build_qa_model, qa_config, train_tokenizer
    tmp = tmp_path_factory.mktemp("rehearsal")
    generated = json.loads((ROOT / "data" / "train.json").read_text(encoding="utf-8"))["data"]
    site = tmp / "site" / "SQuAD-es-v1.1"
    site.mkdir(parents=True)
    train, dev = squad_v11(generated[:16]), squad_v11(generated[16:20])   # 6 training articles + 10 held out
    (site / "train-v1.1-es.json").write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    (site / "dev-v1.1-es.json").write_text(json.dumps(dev, ensure_ascii=False), encoding="utf-8")
    texts = [p["context"] + " " + q["question"] for d in (train, dev) for a in d["data"] for p in a["paragraphs"]
             for q in p["qas"]]
    tok = train_tokenizer(texts, vocab_size=600, min_frequency=1)
    snapshot = tmp / "hf" / f"models--{TEACHER.replace('/', '--')}" / "snapshots" / ("0" * 40)
    cfg = qa_config("roberta", vocab_size=len(tok), hidden_size=64, num_hidden_layers=24, num_attention_heads=16,
                    intermediate_size=128, max_length=384)
    build_qa_model(cfg).save_pretrained(snapshot)
    tok.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp / "site"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "HF_HUB_CACHE": str(tmp / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "KIT_SQUAD_ES_URL": f"http://127.0.0.1:{server.server_address[1]}", "KIT_RUNS": str(tmp / "drive" / "runs"),
           "PYTHONPATH": str(ROOT)}
    env.pop("KIT_BUDGET", None)          # the smoke budget would rename the profile; this budget is the -p below
    yield tmp, env
    server.shutdown()


# the budget: fewer epochs, smaller batches (more updates to kill in between), a checkpoint after each update,
# short timings; everything else is the profile's
BUDGET = {"02_dense_distillation": {"epochs": "3", "batch_size": "2", "grad_accum": "2", "save_every": "1"},
          "04_speed_benchmarks": {"paper_seq_len": "64", "rounds": "1", "repeats": "2", "latency_runs": "2",
                                  "int8": "False"}}
COMMAND = [sys.executable, "-m", "kit", "reproduce", "--profile", "paper"] + [
    arg for stem, params in BUDGET.items() for name, value in params.items() for arg in ("-p", stem, name, value)]


def rehearse(stand_ins, device: str) -> str:
    """The paper profile on `device` (KIT_DEVICE), killed during the student's training and rerun; its log."""
    tmp, env = stand_ins
    env = {**env, "KIT_DEVICE": device, "KIT_RUNS": str(tmp / device / "drive" / "runs")}
    runs = tmp / device / "drive" / "runs" / "paper"
    before = sorted((ROOT / "runs").rglob("*")) if (ROOT / "runs").exists() else []
    proc = subprocess.Popen(COMMAND, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)     # its own process group: the notebook kernel dies with it
    state = runs / "student" / "checkpoint-last" / "trainer_state.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["update"] >= 3:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before the student's training could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    done = subprocess.run(COMMAND, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "01_teacher_finetuning: skipped" in out and "02_dense_distillation: running" in out
    assert "03_multitask_training" not in out           # not part of the paper: nothing trained twice there
    log = (runs / "reproduce.log").read_text()
    assert "resuming from" in log and "updates of" in log and "on a T4" in log    # resumed; the estimate said first
    assert "s per update, ETA" in log                   # then the loop's measured seconds per update and ETA

    # validation: held-out training articles; test: the dev set
    params = json.loads((runs / "notebooks" / "01_teacher_finetuning.done.json").read_text())["parameters"]
    assert params["validation_file"].endswith("train-v1.1-es.json#articles=-10:")
    assert params["test_file"].endswith("dev-v1.1-es.json") and params["validation_file"] != params["test_file"]
    # the student has the paper's shape
    config = json.loads((runs / "student" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
            config["intermediate_size"]) == (6, 512, 16, 3072)
    # each model trained once: the teacher only evaluated, one student, one uninterrupted-looking log
    trained = sorted(p.parent.name for p in runs.rglob("checkpoint-last"))
    assert trained == ["student"]
    assert not (runs / "teacher" / "log.jsonl").exists()
    steps = [e["update"] for e in read_log(runs / "student") if e["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == json.loads(state.read_text())["update"]
    summary = {e["name"]: e for e in json.loads((runs / "summary.json").read_text())}
    assert {"teacher", "student"} <= set(summary) and "baseline" not in summary
    # everything under the chosen runs root, nothing in the repository's runs/
    assert (runs / "benchmark.json").exists() and (runs / "notebooks" / "05_results.ipynb").exists()
    after = sorted((ROOT / "runs").rglob("*")) if (ROOT / "runs").exists() else []
    assert after == before
    return log


def test_the_paper_profile_runs_offline_killed_and_resumed_each_model_trained_once(stand_ins):
    rehearse(stand_ins, "cpu")   # pinned to the CPU (kit.device); the CUDA tier rehearses on a GPU


@pytest.mark.gpu
def test_the_paper_profile_rehearses_on_cuda(stand_ins):
    log = rehearse(stand_ins, "cuda")   # e.g. notebook 02's heatmaps feed a student and teacher left on the GPU
    assert "device cuda" in log         # notebook 04 timed on the GPU
