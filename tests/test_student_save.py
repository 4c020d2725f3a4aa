"""A distilled student is saved as a plain QA model: no projection, no kit attention, loads anywhere."""
import json
import subprocess
import sys

import pytest
import torch

from kit.data import Example
from kit.distill import distill
from kit.features import make_features
from kit.inference import answer
from kit.models import build_qa_model, load_qa_model, qa_config, train_tokenizer
from kit.student import build_student
from kit.train import TrainConfig, read_log

CONTEXT = "Lucía Gómez nació en Lima en 1954. Pedro Ruiz nació en Quito en 1970."
QAS = [("¿Dónde nació Lucía Gómez?", "Lima"), ("¿Dónde nació Pedro Ruiz?", "Quito"),
       ("¿En qué año nació Lucía Gómez?", "1954"), ("¿En qué año nació Pedro Ruiz?", "1970")]


@pytest.fixture(scope="module")
def setup():
    tok = train_tokenizer([CONTEXT] + [q for q, _ in QAS] * 3, vocab_size=300, min_frequency=1)
    examples = [Example(id=str(i), title="t", question=q, context=CONTEXT,
                        answers=[{"text": a, "answer_start": CONTEXT.index(a)}]) for i, (q, a) in enumerate(QAS)]
    torch.manual_seed(0)
    teacher = build_qa_model(qa_config("roberta", vocab_size=len(tok), hidden_size=32, num_hidden_layers=4,
                                       num_attention_heads=4, max_length=64))
    return tok, make_features(examples, tok, max_length=64, stride=16), teacher


@pytest.mark.parametrize("stages", ["one", "two"])
def test_distilled_student_saves_without_projection_and_loads_plainly(setup, tmp_path, stages):
    tok, feats, teacher = setup
    student = build_student(teacher, num_hidden_layers=2, hidden_size=16)
    cfg = TrainConfig(out_dir=str(tmp_path / "student"), epochs=1, batch_size=2, lr=1e-3, warmup=0.0)
    distill(teacher, student, feats, cfg, pad_id=tok.pad_token_id, stages=stages, save_extra=tok.save_pretrained)
    def terms(out_dir):
        rows = [r for r in read_log(out_dir) if r["kind"] == "train"]
        assert rows
        return set.union(*(set(r) for r in rows)) & {"task", "logits", "attention", "hidden"}
    if stages == "one":
        assert terms(cfg.out_dir) == {"task", "logits", "attention", "hidden"}
    else:   # layers first (the task term is logged, with weight 0), then the prediction layer alone
        assert terms(tmp_path / "student" / "stage1") == {"task", "attention", "hidden"}
        assert terms(cfg.out_dir) == {"task", "logits"}
    # the saved weights are exactly the student's: no projection, nothing of the teacher
    from safetensors import safe_open
    with safe_open(str(tmp_path / "student" / "model.safetensors"), "pt") as f:
        saved = set(f.keys())
    assert saved == set(student.state_dict())
    assert not any("projection" in k for k in saved)

    # a fresh interpreter that never imports kit loads it with AutoModelForQuestionAnswering and answers
    script = f"""
import json, torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer
m = AutoModelForQuestionAnswering.from_pretrained({str(tmp_path / 'student')!r}).eval()
t = AutoTokenizer.from_pretrained({str(tmp_path / 'student')!r})
enc = t("¿Dónde nació Pedro Ruiz?", {CONTEXT!r}, return_tensors="pt")
with torch.no_grad():
    out = m(**enc)
print(json.dumps({{"shape": list(out.start_logits.shape), "layers": m.config.num_hidden_layers}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["layers"] == 2 and got["shape"][0] == 1

    # and the kit's one-question helper gives a span of the context
    reloaded = load_qa_model(str(tmp_path / "student"))
    text = answer(reloaded, tok, "¿Dónde nació Pedro Ruiz?", CONTEXT)
    assert text and text in CONTEXT


def test_transformers_pipeline_answers_when_it_exists(setup, tmp_path):
    """pipeline("question-answering") was removed in transformers 5.3; where it exists, it must work."""
    from transformers import pipeline
    from transformers.pipelines import SUPPORTED_TASKS
    if "question-answering" not in SUPPORTED_TASKS:
        pytest.skip("this transformers has no question-answering pipeline (removed in 5.3); kit.inference.answer replaces it")
    tok, feats, teacher = setup
    teacher.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    qa = pipeline("question-answering", model=str(tmp_path / "m"), tokenizer=str(tmp_path / "m"))
    assert qa(question="¿Dónde nació Pedro Ruiz?", context=CONTEXT)["answer"] in CONTEXT
