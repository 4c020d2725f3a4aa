import pytest
import torch

from kit.models import build_qa_model, qa_config
from kit.student import PAPER_STUDENT, build_student, student_config, teacher_layers_for


def teacher(layers=4, hidden=32, heads=4):
    torch.manual_seed(0)
    return build_qa_model(qa_config("roberta", vocab_size=60, hidden_size=hidden, num_hidden_layers=layers,
                                    num_attention_heads=heads, intermediate_size=4 * hidden, max_length=40))


def test_paper_student_shape_from_a_roberta_large_config():
    large = qa_config("roberta", vocab_size=50262, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                      intermediate_size=4096, max_length=512)
    cfg = student_config(large, **PAPER_STUDENT)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (6, 512, 16, 3072)
    # what the student shares with its teacher: vocabulary, positions, padding
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.pad_token_id) == (50262, 514, 1)
    assert large.num_hidden_layers == 24          # the teacher's config is not modified


def test_student_config_refuses_bad_shapes():
    with pytest.raises(ValueError, match="not divisible"):
        student_config(teacher().config, num_hidden_layers=2, hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="no field 'hiden_size'"):
        student_config(teacher().config, num_hidden_layers=2, hiden_size=16)


def test_teacher_layers_are_the_tops_of_the_uniform_blocks():
    assert teacher_layers_for(6, 12) == [1, 3, 5, 7, 9, 11]
    assert teacher_layers_for(2, 4) == [1, 3]


def test_student_from_teacher_layers_copies_embeddings_head_and_chosen_layers():
    t = teacher()
    s = build_student(t, num_hidden_layers=2, init="teacher_layers")
    ts, ss = t.state_dict(), s.state_dict()
    assert torch.equal(ss["roberta.embeddings.word_embeddings.weight"], ts["roberta.embeddings.word_embeddings.weight"])
    assert torch.equal(ss["qa_outputs.weight"], ts["qa_outputs.weight"])
    for i, j in enumerate([1, 3]):
        w = "attention.self.query.weight"
        assert torch.equal(ss[f"roberta.encoder.layer.{i}.{w}"], ts[f"roberta.encoder.layer.{j}.{w}"])
    # copies, not shared tensors: training the student leaves the teacher alone
    ss["roberta.encoder.layer.0.output.dense.bias"].add_(1.0)
    assert not torch.equal(ss["roberta.encoder.layer.0.output.dense.bias"], ts["roberta.encoder.layer.1.output.dense.bias"])


def test_random_student_is_not_a_copy():
    t = teacher()
    s = build_student(t, num_hidden_layers=2, hidden_size=16, num_attention_heads=4)
    assert s.config.intermediate_size == 64          # the teacher's FFN ratio (4x)
    assert s.roberta.embeddings.word_embeddings.weight.shape == (60, 16)


def test_teacher_layers_init_needs_the_teacher_width():
    with pytest.raises(ValueError, match="hidden_size must equal the teacher's"):
        build_student(teacher(), num_hidden_layers=2, hidden_size=16, init="teacher_layers")
    with pytest.raises(ValueError, match="teacher_layers \\[0, 9\\]"):
        build_student(teacher(), num_hidden_layers=2, init="teacher_layers", teacher_layers=[0, 9])
    with pytest.raises(ValueError, match="init 'copy'"):
        build_student(teacher(), num_hidden_layers=2, init="copy")


def test_copied_layer_map_pairs_each_student_layer_with_the_teacher_layer_it_copies():
    from kit.layermap import LayerMap
    t = teacher(layers=4).eval()
    s = build_student(t, num_hidden_layers=3, init="teacher_layers", teacher_layers=[0, 1, 3]).eval()
    m = LayerMap.copied([0, 1, 3]).validate(3, 4)
    assert m.attention == ((0, 0), (1, 1), (2, 3)) and m.hidden == ((0, 0), (1, 1), (2, 2), (3, 4))
    ids = torch.randint(3, 60, (2, 12))
    with torch.no_grad():
        to = t(input_ids=ids, output_hidden_states=True)
        so = s(input_ids=ids, output_hidden_states=True)
    # before the skipped layer the student computes exactly what the teacher does, so the map starts at zero
    # loss there; after it (hidden 3 vs teacher 4) the student has a gap to close
    for i, j in m.hidden[:3]:
        torch.testing.assert_close(so.hidden_states[i], to.hidden_states[j])
    assert not torch.allclose(so.hidden_states[3], to.hidden_states[4], atol=1e-3)
    with pytest.raises(ValueError, match="increasing order"):
        LayerMap.copied([3, 1])
