"""kit.export: an ONNX export of a tiny model gives the PyTorch model's logits and F1 through the kit's windows;
a missing extra names the pip command; a bad export is refused."""
import copy
import json
import sys

import pytest
import torch

from kit.__main__ import main


def _needs_onnxruntime():
    for name in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(name, reason=f"{name} is not installed: the export extra (pip install -e \".[export]\")")


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    _needs_onnxruntime()
    from kit.export import export_model
    path, examples, tok, cfg, model_dir = tiny
    out = tmp_path_factory.mktemp("onnx") / "tiny-onnx"
    info = export_model(model_dir, out, int8=("per-token", "dynamic"), data=path, max_length=64, stride=16)
    return out, info


def test_export_round_trip_logits_and_f1(tiny, exported, capsys):
    from kit.export import check_batches, load_onnx_model, load_onnx_tokenizer, max_logit_diff
    from kit.inference import evaluate_model
    from kit.models import load_qa_model
    path, examples, tok, cfg, model_dir = tiny
    out, info = exported
    assert info["max_abs_logit_diff"]["model.onnx"] < 1e-4
    model, onnx_model = load_qa_model(model_dir, attn_implementation="sdpa").eval(), load_onnx_model(out)
    onnx_tok = load_onnx_tokenizer(out)   # the tokenizer saved with the export
    batches = [*check_batches(onnx_tok, model.config, examples, 64, 16),
               *check_batches(onnx_tok, model.config, None, 64, 16)]
    assert len({tuple(b["input_ids"].shape) for b in batches}) >= 3   # dynamic batch and sequence axes
    assert max_logit_diff(model, onnx_model, batches) < 1e-4
    ours = evaluate_model(model, tok, examples, max_length=64, stride=16)[0]
    theirs = evaluate_model(onnx_model, onnx_tok, examples, max_length=64, stride=16)[0]
    assert abs(ours["f1"] - theirs["f1"]) <= 0.05 and ours["n"] == theirs["n"]
    capsys.readouterr()
    for argv in (["--model", str(model_dir)], ["--model", str(out)]):   # the command line: the same F1
        main(["evaluate", *argv, "--data", str(path), "--max-length", "64", "--stride", "16"])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert abs(lines[0]["f1"] - lines[1]["f1"]) <= 0.05


def test_int8_files_and_default(tiny, exported, capsys):
    path, examples, tok, cfg, model_dir = tiny
    out, info = exported
    assert (out / "model_int8_per_token.onnx").is_file() and (out / "model_int8_dynamic.onnx").is_file()
    scores, fp32 = info["scores"], info["scores"]["model.onnx"]["f1"]
    default = info["int8_default"]
    assert default in (None, "model_int8_per_token.onnx", "model_int8_dynamic.onnx")
    if default:   # the default keeps 99% of the fp32 F1
        assert scores[default]["f1"] >= 0.99 * fp32
    capsys.readouterr()
    main(["evaluate", "--model", str(out), "--data", str(path), "--onnx-file", "model_int8_dynamic.onnx",
          "--max-length", "64", "--stride", "16"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["f1"] == pytest.approx(
        scores["model_int8_dynamic.onnx"]["f1"], abs=0.01)


def test_missing_extra_names_the_pip_command(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import onnxruntime now fails as if it were absent
    with pytest.raises(SystemExit) as e:
        main(["export", "--model", str(tiny[4]), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "onnxruntime" in err and 'pip install "es-qa-distill-kit[export]"' in err
    assert "Traceback" not in err


def test_a_bad_export_is_refused(tiny, tmp_path, monkeypatch, capsys):
    _needs_onnxruntime()
    import kit.export as export
    real = export.export_graph

    def broken_export(model, *args, **kwargs):   # an exporter that gets one bias wrong
        broken = copy.deepcopy(model)
        with torch.no_grad():
            broken.qa_outputs.bias += 0.5
        return real(broken, *args, **kwargs)

    monkeypatch.setattr(export, "export_graph", broken_export)
    out = tmp_path / "bad-onnx"
    with pytest.raises(SystemExit) as e:
        main(["export", "--model", str(tiny[4]), "--out", str(out), "--int8", "none"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "refused" in err and "tolerance" in err
    assert not (out / "model.onnx").exists() and not (out / "export.json").exists()
