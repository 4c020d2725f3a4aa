"""The two loss arithmetics of kit.distill.DistillLoss on one fixed padded batch, each term against its formula
written out by hand with plain Python numbers: "masked" (the kit's: real tokens only) and "padded" (the paper's
code at 29bad11: every window padded to max_length, plain means over every position)."""
import math
from types import SimpleNamespace

import pytest
import torch

from kit.distill import DistillLoss, pad_to_length, use_attention_maps
from kit.layermap import LayerMap

B, L, PAD = 2, 4, 1                    # 2 windows padded to 4 tokens; pad id 1
REAL = [3, 2]                          # real tokens of each window: the collated batch is 3 wide
D_S, D_T, H = 2, 3, 1                  # student width 2, teacher width 3, one head


def fixed(seed, *shape):
    """Fixed numbers (not random): a smooth function of the position, different for each seed."""
    n = math.prod(shape)
    return torch.tensor([math.sin(seed * 1.7 + 0.9 * i) for i in range(n)]).reshape(shape)


class StandIn(torch.nn.Module):
    """A "model" that returns fixed logits, attention maps and hidden states for the first `width` positions of its
    full padded-length tensors, and notes whether autocast was on when it was called."""

    def __init__(self, seed, layers, width):
        super().__init__()
        self.config = SimpleNamespace(num_hidden_layers=layers, hidden_size=width, num_attention_heads=H,
                                      pad_token_id=PAD)
        self.start, self.end = fixed(seed, B, L), fixed(seed + 1, B, L)
        self.maps = [torch.softmax(fixed(seed + 2 + k, B, H, L, L), -1) for k in range(layers)]
        self.states = [fixed(seed + 10 + k, B, L, width) for k in range(layers + 1)]
        self.weight = torch.nn.Parameter(torch.ones(()))      # what the gradient reaches
        self.autocast_at_call = None

    def set_attn_implementation(self, name):
        pass

    def forward(self, input_ids, attention_mask, output_attentions=False, output_hidden_states=False):
        self.autocast_at_call = torch.is_autocast_enabled("cpu")
        w = input_ids.shape[1]
        cut = lambda t: t[..., :w, :w] if t.dim() == 4 else t[:, :w]
        return SimpleNamespace(start_logits=self.weight * self.start[:, :w], end_logits=self.weight * self.end[:, :w],
                               attentions=[self.weight * cut(m) for m in self.maps],
                               hidden_states=[self.weight * s[:, :w] for s in self.states])


def collated():
    ids = torch.full((B, 3), PAD)
    mask = torch.zeros(B, 3, dtype=torch.long)
    for b, n in enumerate(REAL):
        ids[b, :n], mask[b, :n] = 7, 1
    return {"input_ids": ids, "attention_mask": mask, "start_positions": torch.tensor([1, 0]),
            "end_positions": torch.tensor([2, 1])}


def losses(normalisation):
    teacher, student = StandIn(seed=1, layers=2, width=D_T), StandIn(seed=5, layers=1, width=D_S)
    loss_fn = DistillLoss(teacher, student, LayerMap.uniform(1, 2), normalisation=normalisation, pad_to=L)
    proj = loss_fn.projections[0]
    with torch.no_grad():
        proj.weight.copy_(fixed(20, D_T, D_S))
        proj.bias.copy_(fixed(21, D_T))
    return teacher, student, loss_fn


def by_hand(teacher, student, proj, padded: bool) -> dict:
    """Every term with lists and math only. Positions counted: all L of each window (padded), or its real ones."""
    n = [L, L] if padded else REAL
    z = lambda t: t.tolist()
    def log_softmax(xs):
        top = max(xs)
        lse = top + math.log(sum(math.exp(x - top) for x in xs))
        return [x - lse for x in xs]
    gold = {"start": [1, 0], "end": [2, 1]}
    # task: (CE(start) + CE(end)) / 2, each the mean over windows of -log p(gold)
    ce = {k: sum(-log_softmax(z(getattr(student, k))[b][:n[b]])[gold[k][b]] for b in range(B)) / B
          for k in ("start", "end")}
    task = (ce["start"] + ce["end"]) / 2
    # logits: Σ over start and end of (1/B) Σ_b Σ_i p_t log(p_t / p_s), T = 1
    logits = 0.0
    for k in ("start", "end"):
        for b in range(B):
            lt, ls = log_softmax(z(getattr(teacher, k))[b][:n[b]]), log_softmax(z(getattr(student, k))[b][:n[b]])
            logits += sum(math.exp(t) * (t - s) for t, s in zip(lt, ls)) / B
    # attention: student map 0 against teacher map 1 (4i+3 of the 2-layer stand-in: layer 1); the mean of squared
    # differences over every (query, key) of the padded square, or over real query × real key
    a_s, a_t = z(student.maps[0]), z(teacher.maps[1])
    sq = [(a_s[b][0][q][k] - a_t[b][0][q][k]) ** 2 for b in range(B) for q in range(n[b]) for k in range(n[b])]
    attention = sum(sq) / len(sq) if not padded else sum(sq) / (B * H * L * L)
    # hidden: Σ over the pairs (0, 0) and (1, 2) of the mean over tokens and features of (W h_s + b - h_t)²
    W, bias = z(proj.weight), z(proj.bias)
    hidden = 0.0
    for i, j in ((0, 0), (1, 2)):
        hs, ht = z(student.states[i]), z(teacher.states[j])
        sq = [(sum(W[f][e] * hs[b][p][e] for e in range(D_S)) + bias[f] - ht[b][p][f]) ** 2
              for b in range(B) for p in range(n[b]) for f in range(D_T)]
        hidden += sum(sq) / len(sq)
    return {"task": task, "logits": logits, "attention": attention, "hidden": hidden}


@pytest.mark.parametrize("normalisation", ["masked", "padded"])
def test_every_term_of_both_arithmetics_is_its_formula(normalisation):
    teacher, student, loss_fn = losses(normalisation)
    loss, terms = loss_fn(student, collated())
    expected = by_hand(teacher, student, loss_fn.projections[0], normalisation == "padded")
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-5), name
    assert loss.item() == pytest.approx(sum(expected.values()), rel=1e-5)      # all weights 1


def test_padded_runs_the_teacher_outside_autocast_and_masked_inside():
    for normalisation, teacher_autocast in (("masked", True), ("padded", False)):
        teacher, student, loss_fn = losses(normalisation)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss_fn(student, collated())
        assert teacher.autocast_at_call is teacher_autocast, normalisation
        assert student.autocast_at_call is True


def test_padding_to_max_length_and_bad_settings_are_refused():
    padded = pad_to_length(collated(), L, PAD)
    assert padded["input_ids"].shape == (B, L) and padded["input_ids"][0, 3] == PAD
    assert padded["attention_mask"][:, 3].tolist() == [0, 0] and padded["start_positions"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="longer than pad_to=2"):
        pad_to_length(collated(), 2, PAD)
    teacher, student = StandIn(1, 2, D_T), StandIn(5, 1, D_S)
    with pytest.raises(ValueError, match="pad_to=max_length"):
        DistillLoss(teacher, student, normalisation="padded")
    with pytest.raises(ValueError, match="'masked'.*'padded'"):
        DistillLoss(teacher, student, normalisation="per_token")


def test_padded_reads_the_students_maps_after_dropout_as_eager_attention_returns_them():
    from kit.models import build_qa_model, qa_config
    torch.manual_seed(0)
    model = build_qa_model(qa_config("roberta", vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_length=32))
    for module in model.modules():
        if type(module).__name__.endswith("SelfAttention"):
            module.dropout.p = 0.5
    ids = torch.randint(5, 50, (1, 8))
    model.train()
    for after, rows_sum_to_one in ((False, True), (True, False)):
        torch.manual_seed(1)
        maps = use_attention_maps(model, "probs", after_dropout=after)(input_ids=ids, output_attentions=True).attentions
        sums = maps[0].sum(-1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5) is rows_sum_to_one, after


def test_compare_arithmetics_reports_both_on_one_batch_and_leaves_the_student_as_it_was():
    from kit.distill import compare_arithmetics
    from kit.models import build_qa_model, qa_config
    torch.manual_seed(0)
    make = lambda layers, hidden: build_qa_model(qa_config("roberta", vocab_size=50, hidden_size=hidden,
                                                           num_hidden_layers=layers, num_attention_heads=4,
                                                           intermediate_size=2 * hidden, max_length=32))
    teacher, student = make(4, 32), make(2, 16)
    ids = torch.randint(5, 50, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[mask == 0] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "start_positions": torch.tensor([2, 1]),
             "end_positions": torch.tensor([3, 4])}
    student.train()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    rows = compare_arithmetics(teacher, student, batch, pad_to=16, layer_map=LayerMap.uniform(2, 4))
    assert [r["term"] for r in rows] == ["task", "logits", "attention", "hidden"]
    for column in ("gradient share, masked", "gradient share, padded"):
        assert sum(r[column] for r in rows) == pytest.approx(1.0)
    assert all(r["padded / masked"] == pytest.approx(r["padded"] / r["masked"]) for r in rows)
    assert rows[2]["padded"] < rows[2]["masked"]     # 16 padded tokens of mostly empty map rows and columns
    assert student.training and all(torch.equal(v, before[k]) for k, v in student.state_dict().items())
    assert all(p.grad is None for p in student.parameters())
