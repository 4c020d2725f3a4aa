import pytest
import torch

from kit.data import DataError, Example, load_squad
from kit.features import Features, make_features, postprocess
from kit.models import train_tokenizer
from conftest import shared_file


@pytest.fixture(scope="module")
def real_rows():
    examples, _ = load_squad(shared_file("test-v1.1.json"))
    examples = examples[:400]
    tok = train_tokenizer([e.context for e in examples] + [e.question for e in examples], vocab_size=3000)
    return examples, tok


def test_windows_map_back_to_gold_text_on_real_squad_es(real_rows):
    examples, tok = real_rows
    feats = make_features(examples, tok, max_length=128, stride=32)   # short windows: many contexts split
    assert len(feats) > 1.5 * len(examples)
    assert max(len(x) for x in feats.input_ids) <= 128
    exact, found = 0, set()
    for i in range(len(feats)):
        s, e = feats.start_positions[i], feats.end_positions[i]
        ex = examples[feats.example_index[i]]
        if s == 0:
            assert e == 0
            continue
        span = ex.context[feats.offsets[i][s][0]:feats.offsets[i][e][1]]
        gold = ex.answers[0]["text"]
        assert gold.strip() in span                 # the labelled tokens cover the whole answer...
        assert len(span) <= len(gold) + 12          # ...and not much more (whole words around it)
        exact += span.strip() == gold.strip()
        found.add(ex.id)
    labelled = sum(1 for s in feats.start_positions if s)
    assert exact / labelled > 0.9
    # no answer is lost at a cut: every answer fits in at least one window (all are short here)
    assert found == {e.id for e in examples if len(tok(e.answers[0]["text"])["input_ids"]) < 60}


def test_long_context_windows_overlap_and_label_cls_when_answer_outside():
    ctx = " ".join(f"Frase {i} sobre nada." for i in range(60)) + " La capital es Quito."
    ex = Example("x", "t", "¿Cuál es la capital?", ctx, [{"text": "Quito", "answer_start": ctx.index("Quito")}])
    tok = train_tokenizer([ctx, ex.question], vocab_size=300, min_frequency=1)
    feats = make_features([ex], tok, max_length=64, stride=16)
    assert len(feats) > 3
    labelled = [i for i in range(len(feats)) if feats.start_positions[i]]
    assert labelled and all(feats.start_positions[i] == 0 for i in range(len(feats)) if i not in labelled)
    # neighbouring windows share context characters
    spans = [[o for o in f if o] for f in feats.offsets]
    for a, b in zip(spans, spans[1:]):
        assert b[0][0] < a[-1][1]


def test_slow_tokenizer_is_refused():
    class Slow:
        is_fast = False
    with pytest.raises(DataError, match="offset"):
        make_features([Example("x", "t", "q", "c", [])], Slow())


def test_postprocess_picks_best_valid_context_span():
    ctx = "Ana nació en Sevilla en 1954."
    # tokens: 0 CLS, 1-2 question, 3.. context words, last = SEP
    offsets = [None, None, None, (0, 3), (4, 9), (10, 12), (13, 20), (21, 23), (24, 28), None]
    feats = Features([[0] * 10], [0], [offsets], [0], [0])
    ex = Example("x", "t", "q", ctx, [{"text": "Sevilla", "answer_start": 13}])
    start = torch.full((10,), -5.0)
    end = torch.full((10,), -5.0)
    start[1], end[1] = 9.0, 9.0        # the best raw score is a question token: not allowed
    start[6], end[6] = 5.0, 4.0        # Sevilla
    end[5] = 6.0                       # an end before the start: not allowed
    start[8], end[8] = 4.5, 3.5        # 1954 alone scores 8, "Sevilla en 1954" 8.5: both below 9
    assert postprocess([ex], feats, [start], [end]) == {"x": "Sevilla"}
    # max_answer_length in tokens: a 3-token span loses to single-token ones
    start2, end2 = torch.full((10,), -5.0), torch.full((10,), -5.0)
    start2[4], end2[6] = 9.0, 9.0
    start2[8], end2[8] = 3.0, 3.0      # 6, beats "nació en" (9 - 5 = 4)
    assert postprocess([ex], feats, [start2], [end2], max_answer_length=2) == {"x": "1954"}
    assert postprocess([ex], feats, [start2], [end2], max_answer_length=3) == {"x": "nació en Sevilla"}


def test_null_threshold_for_unanswerable_questions():
    offsets = [None, (0, 3), (4, 9)]
    feats = Features([[0] * 3], [0], [offsets], [0], [0])
    ex = Example("u", "t", "q", "Ana nació", [], is_impossible=True)
    start, end = torch.tensor([2.0, 1.0, -1.0]), torch.tensor([2.0, 1.0, -1.0])   # null 4, best span 2
    assert postprocess([ex], feats, [start], [end], version_2=True) == {"u": ""}
    assert postprocess([ex], feats, [start], [end], version_2=True, null_threshold=2.5) == {"u": "Ana"}
    assert postprocess([ex], feats, [start], [end], version_2=False) == {"u": "Ana"}


def test_windows_are_split_by_question_and_rejoined(tiny):
    from kit.features import split_by_question
    _, examples, tok, _, _ = tiny
    feats = make_features(examples, tok, max_length=15, stride=2)     # some questions get several windows
    assert len(feats) > len(examples)
    inside, outside = split_by_question(feats, 0.25, seed=1)
    assert sorted(inside + outside) == list(range(len(feats)))
    chosen = {feats.example_index[k] for k in inside}
    assert len(chosen) == 2 and not chosen & {feats.example_index[k] for k in outside}
    assert split_by_question(feats, 0.25, seed=1) == (inside, outside)   # a pure function of the seed
    from kit.losses import UNLABELLED
    joined = feats.select(inside) + feats.select(outside).without_labels()
    assert len(joined) == len(feats) and joined.input_ids[:len(inside)] == [feats.input_ids[k] for k in inside]
    assert joined.start_positions[:len(inside)] == [feats.start_positions[k] for k in inside]
    assert joined.start_positions[len(inside):] == joined.end_positions[len(inside):] == [UNLABELLED] * len(outside)
    with pytest.raises(ValueError, match="share of the questions"):
        split_by_question(feats, 0.0)


def test_windows_never_outgrow_the_model(tmp_path, caplog):
    """A model of 130 positions (RoBERTa: 128 tokens after the padding offset) on a 400+ token context."""
    import json, subprocess, sys
    from kit.inference import predict_answers
    from kit.models import build_qa_model, max_window, qa_config
    words = [f"palabra{i % 50} en Lima" for i in range(150)]
    context = " ".join(words) + ". Ana nació en Sevilla."
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "q0", "question": "¿Dónde nació Ana?", "answers": [{"text": "Sevilla", "answer_start": context.index("Sevilla")}]}]}]}]}
    tok = train_tokenizer([context, "¿Dónde nació Ana?"], vocab_size=300, min_frequency=1)
    assert len(tok(context)["input_ids"]) > 400
    model = build_qa_model(qa_config("roberta", vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, max_length=128))
    assert model.config.max_position_embeddings == 130 and max_window(model.config) == 128
    ex, _ = load_squad(_write(tmp_path / "long.json", data))
    with caplog.at_level("WARNING", logger="kit"):
        answers = predict_answers(model, tok, ex, max_length=384, stride=128)      # would index position 386
    assert set(answers) == {"q0"} and "using 128" in caplog.text
    model.save_pretrained(tmp_path / "m"); tok.save_pretrained(tmp_path / "m")
    run = lambda *extra: subprocess.run([sys.executable, "-m", "kit", "predict", "--model", str(tmp_path / "m"), "--data",
                                         str(tmp_path / "long.json"), "--out", str(tmp_path / "p.json"), *extra],
                                        capture_output=True, text=True)
    r = run()
    assert r.returncode == 0 and "using 128" in r.stderr and set(json.loads((tmp_path / "p.json").read_text())) == {"q0"}
    r = run("--max-length", "300")
    assert r.returncode == 2 and "reads at most 128 tokens" in r.stderr and "Traceback" not in r.stderr


def _write(path, obj):
    import json
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def test_one_best_span_as_the_papers_evaluation():
    """n_best=1 (kit.metrics.PROTOCOLS["paper"]): only the top start and the top end token; where they make no span
    of the context, no answer, where the kit's 20 × 20 candidates still find one."""
    ctx = "Ana nació en Sevilla en 1954."
    offsets = [None, None, None, (0, 3), (4, 9), (10, 12), (13, 20), (21, 23), (24, 28), None]
    feats = Features([[0] * 10], [0], [offsets], [0], [0])
    ex = Example("x", "t", "q", ctx, [{"text": "Sevilla", "answer_start": 13}])
    start, end = torch.full((10,), -5.0), torch.full((10,), -5.0)
    start[6], end[6] = 5.0, 4.0        # Sevilla
    end[5] = 6.0                       # the top end comes before the top start
    assert postprocess([ex], feats, [start], [end], n_best=1) == {"x": ""}
    assert postprocess([ex], feats, [start], [end]) == {"x": "Sevilla"}
    end[5] = 3.0                       # now the top end is Sevilla's: both find it
    assert postprocess([ex], feats, [start], [end], n_best=1) == {"x": "Sevilla"}


def test_window_scores_are_what_postprocess_decides_on_by_hand():
    from kit.features import window_scores
    ctx = "Ana nació en Sevilla en 1954."
    # two windows of one question: "Ana nació en" and "en Sevilla en 1954" (tokens 0-1: CLS and the question)
    off0 = [None, None, (0, 3), (4, 9), (10, 12), None]
    off1 = [None, None, (10, 12), (13, 20), (21, 23), (24, 28), None]
    feats = Features([[0] * 6, [0] * 7], [0, 0], [off0, off1], [0, 0], [0, 0])
    ex = Example("x", "t", "q", ctx, [{"text": "Sevilla", "answer_start": 13}])
    start = [torch.tensor([1.0, 9.0, 2.0, -1.0, -1.0, 9.0]), torch.tensor([0.5, 0.0, -1.0, 4.0, -1.0, -1.0, 0.0])]
    end = [torch.tensor([1.0, 9.0, -1.0, 3.0, -1.0, 9.0]), torch.tensor([0.0, 0.0, -1.0, 3.5, -1.0, -1.0, 0.0])]
    rows = window_scores(ex, feats, start, end)
    assert rows == [   # question and special tokens (9.0) never make a span
        {"window": 0, "context chars": (0, 12), "no-answer s[0]+e[0]": 2.0, "best span": "Ana nació", "span score": 5.0},
        {"window": 1, "context chars": (10, 28), "no-answer s[0]+e[0]": 0.5, "best span": "Sevilla", "span score": 7.5}]
    best, null = max(rows, key=lambda r: r["span score"]), min(r["no-answer s[0]+e[0]"] for r in rows)
    for threshold in (0.0, -6.9, -7.1, -8.0):   # null - best = 0.5 - 7.5 = -7.0
        by_hand = "" if null - best["span score"] > threshold else best["best span"]
        assert by_hand == ("Sevilla" if threshold >= -7.0 else "")
        assert postprocess([ex], feats, start, end, version_2=True, null_threshold=threshold) == {"x": by_hand}
    # a shorter max_answer_length or n_best changes the rows as it changes postprocess
    assert [r["best span"] for r in window_scores(ex, feats, start, end, n_best=1)] == ["", "Sevilla"]
