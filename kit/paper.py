"""The paper's exact setting (Bazaga, Liò, Micklem, ICLR 2024 Tiny Papers, arXiv 2312.04193), for a GPU, and what
it costs.

Notebook 02 takes these values as parameters (the `paper` and `paper-colab` profiles of kit.profiles). What a run
costs on a GPU: one update is `update_flops` (the teacher's forward plus the student's forward and backward, windows
counted full): ~9.9 TFLOP at the paper's batch 32 × 384 tokens.
- Measured (`H200_MEASURED`): on an NVIDIA H200, paper-shaped updates through kit.train took 0.134 s in fp16 as 16 × 2
  micro-batches (74 TFLOP/s achieved; 0.080 s as batch 32 at once), with the teacher computing all 24 attention maps
  (before kit.distill's teacher_outputs="mapped"). The paper profile's ~272,000 updates: ~10 h there.
- Derived, not measured (`GPU_TFLOPS`): a T4 or an A100 is assumed to reach the same share of its dense fp16
  tensor-core peak as the H200 did (74 of 989 TFLOP/s): ~4.9 TFLOP/s on a T4 (peak 65), ~23 on an A100 (peak 312).
  `training_estimate` prints these before a run; the loop then measures the machine it runs on (kit.train prints the
  seconds per update and the ETA after its first updates), and `kit bench --paper-pair --train-step` measures a
  GPU's updates without the data.
"""
import os

TEACHER = "stevemobs/roberta-large-fine-tuned-squad-es"      # RoBERTa-large, 24×1024×16, 354M parameters
# The public SQuAD-es v1.1 JSON files. $KIT_SQUAD_ES_URL replaces the base (the test suite serves small files with
# the same paths from 127.0.0.1 to rehearse the paper profile offline).
SQUAD_ES_URL = "KIT_SQUAD_ES_URL"
SQUAD_ES_BASE = os.environ.get(SQUAD_ES_URL) or "https://raw.githubusercontent.com/ccasimiro88/TranslateAlignRetrieve/master"
SQUAD_ES_V11 = {"train": f"{SQUAD_ES_BASE}/SQuAD-es-v1.1/train-v1.1-es.json",
                "dev": f"{SQUAD_ES_BASE}/SQuAD-es-v1.1/dev-v1.1-es.json"}
# kit bench --paper-pair --train-step on an NVIDIA H200 (torch 2.11+cu130), before teacher_outputs="mapped"
H200_MEASURED = {"seconds_per_update": 0.134, "tflop_per_s": 74.0, "setting": "fp16, micro-batch 16 x grad_accum 2, "
                 "384 tokens, all four terms, the teacher's 24 attention maps computed"}
PEAK_FP16_TFLOPS = {"H200": 989.0, "A100": 312.0, "T4": 65.0}   # dense fp16 tensor-core peaks (vendor figures)
# derived: the H200's measured share of its peak, applied to the others' peaks (an estimate, not a measurement)
GPU_TFLOPS = {gpu: round(H200_MEASURED["tflop_per_s"] * peak / PEAK_FP16_TFLOPS["H200"], 1)
              for gpu, peak in PEAK_FP16_TFLOPS.items() if gpu != "H200"}
UPDATES_PER_EPOCH = 2_720   # the paper profile: SQuAD-es v1.1's training windows (384/128) in updates of 32

PAPER_SETTING = dict(
    teacher=TEACHER,
    student_layers=6, student_hidden=512, student_heads=16, student_ffn=3072,   # SpanishTinyRoBERTa, 51.2M
    init="random",                        # the student starts from random weights
    student_dropout=0.1,                  # attention and hidden dropout: the teacher's config, which the reference's
                                          # student config inherits (it sets only the shape)
    layer_map="uniform",                  # attention i <- teacher 4i+3, hidden i <- teacher 4i (0 = embeddings)
    attention="probs",                    # post-softmax maps (outputs.attentions), as in the paper's code
    projection="shared",                  # one Linear(512, 1024) for every hidden pair
    w_task=1.0, w_logits=1.0, w_attention=1.0, w_hidden=1.0, temperature=1.0,
    stages="one",                         # all terms at once
    normalisation="padded",               # the arithmetic of the paper's code: windows padded to 384, padding in
                                          # every mean, the teacher in fp32 (kit.distill; the kit's own: "masked")
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
    """'N updates of X TFLOP: about ... on a T4 and ... on an A100 (derived ...)' for a notebook to print first."""
    from .train import duration
    gpus = " and ".join(f"{duration(updates * flops_per_update / (GPU_TFLOPS[gpu] * 1e12))} on {article} {gpu}"
                        for gpu, article in (("T4", "a"), ("A100", "an")))
    return (f"{updates:,} updates of {flops_per_update / 1e12:.2f} TFLOP: about {gpus} (derived from an H200's measured "
            f"{H200_MEASURED['tflop_per_s']:.0f} TFLOP/s, scaled by fp16 peak: kit.paper; the loop measures this "
            f"machine after its first updates)")
