"""The paper's exact setting (Bazaga, Liò, Micklem, ICLR 2024 Tiny Papers, arXiv 2312.04193), for a GPU, and what
it costs.

Notebook 02 takes these values as parameters (the `paper` and `paper-colab` profiles of kit.profiles). What a run
costs is estimated, not measured (no GPU was used to write this kit), from the FLOPs of one update
(`update_flops`: the teacher's forward plus the student's forward and backward, windows counted full) and a
sustained fp16 throughput that we assume for each GPU (`GPU_TFLOPS`, about a third of its peak: eager attention
returning its maps, and small matrices, keep a GPU far from its peak). At the paper's batch 32 × 384 tokens an
update is ~9.9 TFLOP, so SQuAD-es v1.1's ~2,700 updates per epoch take ~23 min on a T4 and ~4.5 min on an A100:
the paper's 100 epochs are ~38 T4-hours or ~7.5 A100-hours (`training_estimate` prints this for a run).
"""
import os

TEACHER = "stevemobs/roberta-large-fine-tuned-squad-es"      # RoBERTa-large, 24×1024×16, 354M parameters
# The public SQuAD-es v1.1 JSON files. $KIT_SQUAD_ES_URL replaces the base (the test suite serves small files with
# the same paths from 127.0.0.1 to rehearse the paper profile offline).
SQUAD_ES_URL = "KIT_SQUAD_ES_URL"
SQUAD_ES_BASE = os.environ.get(SQUAD_ES_URL) or "https://raw.githubusercontent.com/ccasimiro88/TranslateAlignRetrieve/master"
SQUAD_ES_V11 = {"train": f"{SQUAD_ES_BASE}/SQuAD-es-v1.1/train-v1.1-es.json",
                "dev": f"{SQUAD_ES_BASE}/SQuAD-es-v1.1/dev-v1.1-es.json"}
GPU_TFLOPS = {"T4": 20, "A100": 100}   # assumed sustained fp16 TFLOP/s (peaks: 65 and 312)

PAPER_SETTING = dict(
    teacher=TEACHER,
    student_layers=6, student_hidden=512, student_heads=16, student_ffn=3072,   # SpanishTinyRoBERTa, 51.2M
    init="random",                        # the student starts from random weights
    layer_map="uniform",                  # attention i <- teacher 4i+3, hidden i <- teacher 4i (0 = embeddings)
    attention="probs",                    # post-softmax maps (outputs.attentions), as in the paper's code
    projection="shared",                  # one Linear(512, 1024) for every hidden pair
    w_task=1.0, w_logits=1.0, w_attention=1.0, w_hidden=1.0, temperature=1.0,
    stages="one",                         # all terms at once
    epochs=100, batch_size=32, learning_rate=3e-5, warmup=0.2,
    max_length=384, doc_stride=128, mixed_precision="fp16",
)
PAPER_RESULTS = {"teacher": {"f1": 87.50, "exact_match": 78.30}, "student": {"f1": 80.52, "exact_match": 71.23},
                 "speedup": 4.2, "param_ratio": 6.9}


def paper_configs():
    """Configs of the paper's two shapes, RoBERTa-large (24×1024×16, FFN 4096) and the 6×512 student, with
    the teacher's 50,262-token vocabulary: built from configs (random weights) to time them or count FLOPs."""
    from .models import qa_config
    from .student import PAPER_STUDENT, student_config
    teacher = qa_config("roberta", vocab_size=50262, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                        intermediate_size=4096)
    return teacher, student_config(teacher, **PAPER_STUDENT)


def update_flops(student_config, windows: int, seq_len: int, teacher_config=None) -> float:
    """FLOPs of one update on `windows` windows of `seq_len` tokens: the student's forward and backward (3 forwards)
    and, when distilling, the teacher's forward (kit.models.flops_per_token, embeddings excluded)."""
    from .models import flops_per_token
    teacher = flops_per_token(teacher_config, seq_len) if teacher_config is not None else 0
    return windows * seq_len * (teacher + 3 * flops_per_token(student_config, seq_len))


def training_estimate(updates: int, flops_per_update: float) -> str:
    """'N updates of X TFLOP: about ... on a T4, ... on an A100 (estimated, ...)' for a notebook to print first."""
    def hours(gpu):
        seconds = updates * flops_per_update / (GPU_TFLOPS[gpu] * 1e12)
        if seconds >= 3600:
            return f"{seconds / 3600:.1f} h"
        return f"{round(seconds / 60)} min" if seconds >= 90 else f"{max(1, round(seconds))} s"
    return (f"{updates:,} updates of {flops_per_update / 1e12:.2f} TFLOP: about {hours('T4')} on a T4 and "
            f"{hours('A100')} on an A100 (an estimate at an assumed {GPU_TFLOPS['T4']} and {GPU_TFLOPS['A100']} "
            f"TFLOP/s in fp16, kit.paper; not measured)")
