import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad-es"


@pytest.fixture
def write_json(tmp_path):
    """Write an object (or raw text/bytes) to a file in tmp_path and return its path."""
    def write(obj, name="bad.json"):
        path = tmp_path / name
        if isinstance(obj, bytes):
            path.write_bytes(obj)
        elif isinstance(obj, str):
            path.write_text(obj, encoding="utf-8")
        else:
            path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
        return path
    return write


def squad(context, qas, title="Prueba"):
    return {"version": "v2.0", "data": [{"title": title, "paragraphs": [{"context": context, "qas": qas}]}]}


def shared_file(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is absent)")
    return path


PEOPLE = [("Ana", "Sevilla"), ("Luis", "Quito"), ("Marta", "Lima"), ("Pedro", "Bilbao"), ("Sara", "Cusco"),
          ("Juan", "Toledo"), ("Elena", "Rosario"), ("Raúl", "Cádiz")]


def tiny_squad() -> dict:
    """Eight one-question paragraphs, each naming two people: enough to exercise loops, saving and the CLI."""
    paragraphs = []
    for i, (name, city) in enumerate(PEOPLE):
        other = PEOPLE[(i + 1) % len(PEOPLE)]
        ctx = f"{other[0]} nació en {other[1]}. {name} nació en {city}."
        paragraphs.append({"context": ctx, "qas": [{"id": f"q{i}", "question": f"¿Dónde nació {name}?",
                                                    "answers": [{"text": city, "answer_start": ctx.rindex(city)}]}]})
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """tiny.json, its examples, a tokenizer trained on it, a 2×32 config and that model saved untrained."""
    from kit.data import load_squad
    from kit.models import build_qa_model, qa_config, train_tokenizer
    d = tmp_path_factory.mktemp("tiny")
    path = d / "tiny.json"
    path.write_text(json.dumps(tiny_squad(), ensure_ascii=False))
    examples, _ = load_squad(path)
    tok = train_tokenizer([e.context + " " + e.question for e in examples], vocab_size=400, min_frequency=1)
    cfg = qa_config("roberta", vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_length=64)   # dropout on: a resumed run must restore the RNG too
    model_dir = d / "untrained"
    build_qa_model(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return path, examples, tok, cfg, model_dir


def write_notebook(path, body, parameters='profile = "demo"'):
    """A two-cell notebook: a cell tagged `parameters` holding `parameters`, then `body`."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture(autouse=True)
def on_the_cpu_outside_the_cuda_tier(request, monkeypatch):
    """Every test outside the CUDA tier runs on the CPU on any machine (kit.device: KIT_DEVICE=cpu): its exact
    values (bit-equal resumes, torch.equal of logits, CPU autocast) are CPU facts, and CI has no GPU. The tier
    marked `gpu` (tests/test_cuda.py, the CUDA paper rehearsal) checks the GPU paths; the notebooks under nbval
    run wherever the machine's default is."""
    if "gpu" not in request.keywords:
        monkeypatch.setenv("KIT_DEVICE", "cpu")


def pytest_collection_modifyitems(config, items):
    """The CUDA tier (`pytest -m gpu`, docs/colab-and-gpus.md): tests marked `gpu` are skipped where torch sees no CUDA GPU."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (the CUDA tier: pytest -m gpu on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
