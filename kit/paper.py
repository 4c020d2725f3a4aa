"""The paper's exact setting (Bazaga, Liò, Micklem, ICLR 2024 Tiny Papers, arXiv 2312.04193), for a GPU.

Notebook 02 takes these values as parameters (papermill -p ...). Expected time on one Colab A100, fp16 --
an estimate from the shapes, not a measurement (no GPU was used to write this): SQuAD-es v1.1 train gives
~90k windows of 384 tokens; a distillation step at batch 32 (a RoBERTa-large forward, ~2·300M FLOP per
token, plus the 6×512 student's forward and backward, ~6·25M) is ~9.5 TFLOP, 0.1-0.2 s at 50-100 TFLOP/s
(eager attention, maps returned), so an epoch of ~2,800 steps takes 5-10 min and the paper's 100 epochs
8-16 GPU-hours.
"""

TEACHER = "stevemobs/roberta-large-fine-tuned-squad-es"      # RoBERTa-large, 24×1024×16, 354M parameters
SQUAD_ES_V11 = {                                              # the public SQuAD-es v1.1 JSON files
    "train": "https://raw.githubusercontent.com/ccasimiro88/TranslateAlignRetrieve/master/SQuAD-es-v1.1/train-v1.1-es.json",
    "dev": "https://raw.githubusercontent.com/ccasimiro88/TranslateAlignRetrieve/master/SQuAD-es-v1.1/dev-v1.1-es.json",
}

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
