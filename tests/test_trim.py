import copy

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from kit.data import Example
from kit.models import build_qa_model, count_params, qa_config, train_tokenizer
from kit.trim import size_on_disk_mb, trim_vocabulary, unseen_text_report, used_token_ids, with_rows_for

SPANISH = ["¿Dónde nació Lucía Gómez?", "Lucía Gómez nació en Sevilla en 1954 y trabaja como arquitecta.",
           "¿Cuántos habitantes tiene Villanueva del Río?", "Villanueva del Río cuenta con 3.200 habitantes."]
OTHER = ["The quick brown fox jumps over the lazy dog.", "Der schnelle braune Fuchs springt.",
         "Le renard brun rapide saute par-dessus le chien paresseux.", "Zwölf Boxkämpfer jagen Viktor quer."]


@pytest.fixture(scope="module")
def multilingual():
    """A tiny XLM-R-shaped model with a SentencePiece (Unigram) vocabulary over several languages."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok.train_from_iterator(SPANISH + OTHER, trainers.UnigramTrainer(vocab_size=300, special_tokens=specials,
                                                                      unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", pad_token="<pad>", unk_token="<unk>")
    fast.add_special_tokens({"mask_token": "<mask>"})
    torch.manual_seed(0)
    model = build_qa_model(qa_config("xlm-roberta", vocab_size=len(fast), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64, max_length=64)).eval()
    return model, fast


def test_trimmed_model_gives_identical_logits_on_the_kept_text(multilingual, tmp_path):
    model, tok = multilingual
    pairs = (SPANISH[0], SPANISH[1]), (SPANISH[2], SPANISH[3])
    before = tok([q for q, _ in pairs], [c for _, c in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = model(**before)
    keep = used_token_ids(tok, SPANISH)
    assert len(keep) < len(tok) and {tok.pad_token_id, tok.mask_token_id, tok.unk_token_id} <= set(keep)
    model.save_pretrained(tmp_path / "full")
    small, small_tok = trim_vocabulary(model, tok, keep, tmp_path / "trim")
    assert small.get_input_embeddings().weight.shape[0] == len(keep) == len(small_tok)
    after = small_tok([q for q, _ in pairs], [c for _, c in pairs], padding=True, return_tensors="pt")
    # the same pieces under new ids: old id = keep[new id], special tokens included
    assert torch.equal(torch.tensor(keep)[after["input_ids"]], before["input_ids"])
    with torch.no_grad():
        out = small.eval()(**after)
    assert torch.allclose(out.start_logits, ref.start_logits, atol=1e-6)
    assert torch.allclose(out.end_logits, ref.end_logits, atol=1e-6)
    assert small_tok.decode(after["input_ids"][0], skip_special_tokens=True).startswith("¿Dónde nació")
    assert size_on_disk_mb(tmp_path / "trim") < size_on_disk_mb(tmp_path / "full")


def test_trimming_refuses_bpe_tokenizers_and_missing_special_tokens(multilingual, tmp_path):
    model, tok = multilingual
    with pytest.raises(ValueError, match="special token ids"):
        trim_vocabulary(model, tok, [5, 6, 7], tmp_path / "a")
    bpe = train_tokenizer(SPANISH, vocab_size=300, min_frequency=1)
    bpe_model = build_qa_model(qa_config("roberta", vocab_size=len(bpe), hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=4, intermediate_size=64, max_length=64))
    with pytest.raises(ValueError, match="Unigram.*BPE"):
        trim_vocabulary(bpe_model, bpe, used_token_ids(bpe, SPANISH), tmp_path / "b")


def test_parameters_removed_are_the_embedding_rows_removed_times_the_width(multilingual, tmp_path):
    """A checkpoint may pad its embedding table beyond the tokenizer (multilingual-e5-small: 250,037 rows for
    250,002 pieces): trimming removes rows, so rows removed × width, not pieces removed × width, adds up."""
    _, tok = multilingual
    torch.manual_seed(0)
    padded = build_qa_model(qa_config("xlm-roberta", vocab_size=len(tok) + 7, hidden_size=32, num_hidden_layers=1,
                                      num_attention_heads=4, intermediate_size=64, max_length=64))
    rows, before = padded.get_input_embeddings().weight.shape[0], count_params(padded)["params"]
    keep = used_token_ids(tok, SPANISH)
    small, small_tok = trim_vocabulary(padded, tok, keep, tmp_path / "t")
    removed = before - count_params(small)["params"]
    assert rows - len(tok) == 7
    assert removed == (rows - len(keep)) * 32 == (len(tok) - len(small_tok) + 7) * 32


def untrimmed(tok):
    """A new model of the fixture's shape (the fixture's own model is trimmed in place by the first test)."""
    torch.manual_seed(0)
    return build_qa_model(qa_config("xlm-roberta", vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=64, max_length=64)).eval()


def test_unseen_text_report_counts_pieces_unk_and_questions(multilingual, tmp_path):
    _, tok = multilingual
    small, small_tok = trim_vocabulary(untrimmed(tok), tok, used_token_ids(tok, SPANISH), tmp_path / "t")
    seen = Example(id="a", title="", question=SPANISH[0], context=SPANISH[1], answers=[])
    unseen = Example(id="b", title="", question=SPANISH[0], context=OTHER[0], answers=[])
    report = unseen_text_report(tok, small_tok, [seen, unseen])
    pieces = lambda t, text: t.convert_ids_to_tokens(t(text, add_special_tokens=False)["input_ids"])
    n = {text: len(pieces(tok, text)) for text in (SPANISH[0], SPANISH[1], OTHER[0])}
    after = pieces(small_tok, OTHER[0])
    missing = sum(p not in small_tok.get_vocab() for p in pieces(tok, OTHER[0]))
    assert missing > 0 and after != pieces(tok, OTHER[0])
    assert report == {"questions": 2, "questions affected": 1, "tokens": 2 * n[SPANISH[0]] + n[SPANISH[1]] + n[OTHER[0]],
                      "tokens not kept": missing,
                      "tokens after": 2 * n[SPANISH[0]] + n[SPANISH[1]] + len(after),
                      "unk after": after.count("<unk>")}


def test_rows_added_back_give_the_model_trimmed_with_those_texts(multilingual, tmp_path):
    _, tok = multilingual
    model = untrimmed(tok)
    direct, direct_tok = trim_vocabulary(copy.deepcopy(model), tok, used_token_ids(tok, SPANISH + OTHER[:1]),
                                         tmp_path / "direct")
    source = model.get_input_embeddings().weight.detach().clone()
    small, small_tok = trim_vocabulary(copy.deepcopy(model), tok, used_token_ids(tok, SPANISH), tmp_path / "small")
    wide, wide_tok = with_rows_for(small, small_tok, source, tok, OTHER[:1], tmp_path / "wide")
    assert wide_tok.get_vocab() == direct_tok.get_vocab()
    assert torch.equal(wide.get_input_embeddings().weight, direct.get_input_embeddings().weight)
    enc = wide_tok(SPANISH[0], OTHER[0], return_tensors="pt")
    assert torch.equal(enc["input_ids"], direct_tok(SPANISH[0], OTHER[0], return_tensors="pt")["input_ids"])
    with torch.no_grad():
        assert torch.equal(wide.eval()(**enc).start_logits, direct.eval()(**enc).start_logits)


def test_size_row_counts_vocabulary_entries_embedding_rows_and_the_parameters_trimming_removes(multilingual,
                                                                                                 tmp_path):
    from kit.bench import state_size_mb
    from kit.trim import size_row
    _, tok = multilingual   # its model may have been trimmed in place by a test above: a fresh one of its shape
    model = build_qa_model(qa_config("xlm-roberta", vocab_size=len(tok) + 5, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64, max_length=64)).eval()
    full = size_row("as loaded", model, tok)   # 5 padding rows that no vocabulary entry uses, as e5's checkpoint has
    assert full == {"model": "as loaded", "vocabulary entries": len(tok), "embedding rows": len(tok) + 5,
                    "layers": 2, **count_params(model), "MB (fp32)": state_size_mb(model)}
    keep = used_token_ids(tok, SPANISH)
    small, small_tok = trim_vocabulary(copy.deepcopy(model), tok, keep, tmp_path / "trim")
    kept = size_row("trimmed", small, small_tok)
    assert kept["vocabulary entries"] == kept["embedding rows"] == len(keep) < full["embedding rows"]
    assert full["params"] - kept["params"] == (len(tok) + 5 - len(keep)) * 32   # rows removed × the width
    assert kept["non_embedding_params"] == full["non_embedding_params"] and kept["MB (fp32)"] < full["MB (fp32)"]
