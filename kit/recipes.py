"""A student's recipe: everything that decides it, as one small object, and the function that trains it.

    recipe = Recipe(teacher="runs/es-local/teacher", train="train-v1.1.json", layers=8, init="teacher_layers",
                    teacher_layers="0,2,4,5,6,8,10,11", layer_map="copied")
    train_recipe(recipe, TrainConfig(out_dir="runs/es-local/student8", epochs=2, batch_size=16, lr=1e-4))
    # the same from the command line (kit.cli makes one flag per field of Recipe and of TrainConfig):
    python -m kit distill --teacher runs/es-local/teacher --train train-v1.1.json --out runs/es-local/student8 \
        --layers 8 --init teacher_layers --teacher-layers 0,2,4,5,6,8,10,11 --layer-map copied --epochs 2 ...

The recipe covers what notebooks 02 and 03 and results/es-local train:
  student     its shape (layers, hidden, heads, ffn; 0 = the teacher's), built by kit.student.build_student
              with `init` random (the paper) or teacher_layers (DistilBERT style, `teacher_layers` chooses
              which), or continued from a saved student (`from_model`);
  mode        distill: kit.distill.distill with the four weights, temperature, attention kind, projection,
              layer map (uniform, or copied: each layer imitates the teacher layer it was copied from) and
              stages (one | two); baseline: the same student, the task loss only, no teacher (kit.train.train);
  teacher_outputs  the teacher's saved start/end logits (kit.teacher_outputs) read in place of running it: the
              task and logit terms only; `unlabelled` adds a file's questions as windows the teacher alone labels;
  tasks       "qa", or "qa,answerability" (...): one multi-task student (kit.multitask), its batches drawn by
              `sampling`; in distill mode the QA task learns from the teacher too.
The recipe goes with the run: kit.train records it in the checkpoint (a resume with another recipe is refused)
and `out_dir/recipe.json` holds it beside the model, with the train config and the command that reruns it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import shlex
from dataclasses import dataclass
from pathlib import Path

from .cli import flags, option
from .results import run_dir

RECIPE_FILE = "recipe.json"
MODES, LAYER_MAPS, NORMALISATIONS = ("distill", "baseline"), ("uniform", "copied", "last_k"), ("masked", "padded")
# the flags of `kit distill` that are not the field's name (as `kit train`'s)
SKIP, NAMES = ("resume", "out_dir"), {"num_threads": "--threads"}


@dataclass
class Recipe:
    teacher: str = option(lambda: str(run_dir("demo") / "teacher"), "the saved teacher (a model directory with its "
                          "tokenizer; the default is under $KIT_RUNS where it is set, kit.results.run_dir)")
    train: str = option("data/train.json", "SQuAD-format training file (FILE.json#articles=:31 takes some articles)")
    unlabelled: str = option("", "SQuAD-format file(s), comma-separated, whose questions are added as windows without "
                                 "labels: they learn from the teacher's logits alone (Features.without_labels)")
    eval: str = option("", "validation file scored after each epoch, the best epoch kept ('' = keep the last; "
                           "never the test file)")
    max_length: int = option(384, "tokens per window")
    stride: int = option(128, "tokens two windows of one context share")
    mode: str = option("distill", "distill (learn from the teacher) or baseline (task loss only, no teacher)")
    teacher_outputs: str = option("", "the teacher's saved start/end logits (python -m kit teacher-outputs): the "
                                      "logit term reads them instead of running the teacher; --teacher must name the "
                                      "teacher that wrote them (its weights are checked against the file); the dense "
                                      "terms need the live teacher (--attention-weight 0 --hidden-weight 0)")
    init_from: str = option("", "the model the student is built from (its shape, and the layers --init "
                                "teacher_layers copies) when that is not the teacher, e.g. a saved student to "
                                "shorten; '' = --teacher. Same tokenizer as the teacher")
    layers: int = option(6, "student depth")
    hidden: int = option(0, "student width (0: the teacher's)")
    heads: int = option(0, "student attention heads (0: the teacher's)")
    ffn: int = option(0, "student feed-forward width (0: the teacher's FFN/width ratio)")
    init: str = option("random", "random (the paper) or teacher_layers (copy teacher layers, DistilBERT style)")
    teacher_layers: str = option("", "the teacher layers a teacher_layers student copies and a copied map imitates, "
                                     "e.g. 0,2,4,5,6,8,10,11 ('' = the top of each uniform block)")
    from_model: str = option("", "continue from this saved student instead of building one (its own shape)")
    layer_map: str = option("uniform", "which teacher layer each student layer learns from: uniform (TinyBERT), "
                                       "copied (the one it was copied from) or last_k")
    task_weight: float = option(1.0, "weight of the task cross-entropy")
    logits_weight: float = option(1.0, "weight of the start/end logit KL")
    attention_weight: float = option(1.0, "weight of the attention-map MSE (0: no maps are computed)")
    hidden_weight: float = option(1.0, "weight of the hidden-state MSE")
    temperature: float = option(1.0, "softmax temperature of the logit KL")
    normalisation: str = option("masked", "the loss arithmetic: masked (means over real tokens only, the kit's) or "
                                          "padded (the paper's code: windows padded to --max-length, padding in "
                                          "every mean, the teacher in fp32; kit.distill)")
    attention: str = option("probs", "probs (post-softmax maps, the paper) or scores (pre-softmax, TinyBERT)")
    projection: str = option("shared", "hidden-state projection when widths differ: shared or per_layer")
    head_match: str = option("match", "compare attention maps head by head (match) or their mean (mean)")
    stages: str = option("one", "one (every term from the start, the paper) or two (layers first, TinyBERT)")
    tasks: str = option("qa", "qa, or qa with more tasks for one multi-task student, e.g. qa,answerability")
    answerability_file: str = option("", "the answerability task's SQuAD v2 training file ('' = --train)")
    sampling: str = option("temperature", "multi-task batches: proportional, temperature or round_robin")
    sampling_temperature: float = option(2.0, "sampling=temperature: a task's share is ∝ n^(1/T)")

    def __post_init__(self):
        for name, value, valid in (("mode", self.mode, MODES), ("layer_map", self.layer_map, LAYER_MAPS),
                                   ("normalisation", self.normalisation, NORMALISATIONS)):
            if value not in valid:
                raise ValueError(f"recipe {name} {value!r}: choose one of {', '.join(valid)}.")
        if self.teacher_outputs:
            dense = [f"--{n}-weight {getattr(self, n + '_weight')}" for n in ("attention", "hidden")
                     if getattr(self, n + "_weight")]
            if self.mode != "distill" or self.tasks != "qa" or self.stages != "one" or dense:
                raise ValueError(f"recipe teacher_outputs {self.teacher_outputs!r}: saved outputs hold start/end "
                                 f"logits only, for one-stage QA distillation (--mode distill --tasks qa --stages "
                                 f"one); the attention and hidden terms need the live teacher: add "
                                 f"--attention-weight 0 --hidden-weight 0"
                                 + (f" (this recipe has {', '.join(dense)})" if dense else "") + ".")
        if self.normalisation == "padded" and (self.teacher_outputs or self.tasks != "qa"):
            raise ValueError(f"recipe normalisation 'padded': the paper's arithmetic is for one-task distillation from "
                             f"the live teacher (saved outputs hold no logits for padded positions); use "
                             f"--normalisation masked with --teacher-outputs or --tasks {self.tasks!r}.")
        if self.layer_map == "copied" and not self.teacher_layers:
            raise ValueError("recipe layer_map 'copied' needs teacher_layers (e.g. --teacher-layers 0,2,4): the "
                             "teacher layers the student's layers were copied from.")

    def layer_list(self) -> list[int] | None:
        try:
            return [int(x) for x in self.teacher_layers.split(",")] if self.teacher_layers else None
        except ValueError:
            raise ValueError(f"recipe teacher_layers {self.teacher_layers!r}: give comma-separated layer "
                             f"indices, e.g. 0,2,4.") from None


# inputs that the run's data digest already covers: a moved file must not block a resume
# (and the saved teacher outputs: the checkpoint's digest of the loss's frozen state covers their contents)
NOT_INPUTS = ("train", "answerability_file", "unlabelled", "teacher_outputs")


def train_recipe(recipe: Recipe, cfg, command: str = "") -> list[dict]:
    """Train the student that `recipe` describes with the loop settings `cfg` (a kit.train.TrainConfig); return
    the log. Writes cfg.out_dir/recipe.json (the recipe, the config, the command and the machine)."""
    from accelerate.utils import set_seed
    from .models import load_tokenizer
    check_resume(recipe, cfg, command)
    tok = load_tokenizer(recipe.teacher)
    teacher = None if recipe.mode == "baseline" and recipe.from_model else _load(recipe.teacher)
    source = _student_source(recipe, tok, teacher)
    # Everything the run creates at random (the student's weights, then the projection and the task heads, built
    # after it) comes from the run's seed: seeded here, before any of them (the loop seeds again for dropout).
    set_seed(cfg.seed)
    student = _student(recipe, source)
    data, tasks = _data(recipe, tok)
    common = dict(pad_id=tok.pad_token_id, evaluate=_evaluator(recipe, tok), save_extra=tok.save_pretrained,
                  inputs=_inputs(recipe))
    if tasks:
        log = _train_multitask(recipe, cfg, student, tasks, teacher, common)
    elif recipe.mode == "baseline":
        from .train import train
        log = train(student, data, cfg, **common)
    else:
        from .distill import DistillWeights, distill
        weights = DistillWeights(recipe.task_weight, recipe.logits_weight, recipe.attention_weight,
                                 recipe.hidden_weight)
        if recipe.teacher_outputs:
            teacher = _saved_teacher(recipe, tok, data, teacher)
        log = distill(teacher, student, data, cfg, stages=recipe.stages, weights=weights,
                      layer_map=_layer_map(recipe, student, teacher), temperature=recipe.temperature,
                      attention=recipe.attention, projection=recipe.projection, heads=recipe.head_match,
                      normalisation=recipe.normalisation, pad_to=recipe.max_length, **common)
    write_recipe(recipe, cfg, command)
    return log


# the models a recipe names: recorded in the run's identity as kit.results.portable writes them (runs/<rest> for
# a folder under $KIT_RUNS), so that a run continues after its runs folder moved
MODEL_PATHS = ("teacher", "init_from", "from_model")


def _inputs(recipe: Recipe) -> dict:
    from .results import portable
    return {k: portable(v) if k in MODEL_PATHS else v for k, v in dataclasses.asdict(recipe).items()
            if k not in NOT_INPUTS}


def check_resume(recipe: Recipe, cfg, command: str = ""):
    """A fresh run (or a first start) writes recipe.json now, so that a killed run has it too; a resumed one leaves
    it alone: the checkpoint compares the recipe (train's `inputs`) and refuses another one (kit.checkpoint)."""
    if not (cfg.resume and (Path(cfg.out_dir) / "checkpoint-last" / "trainer_state.json").exists()):
        write_recipe(recipe, cfg, command)


def _load(path: str):
    from .models import load_qa_model
    # SDPA, the faster kernel: where an attention term reads maps, DistillLoss switches both models to
    # kit.distill's map-returning attention itself (use_attention_maps)
    return load_qa_model(path, attn_implementation="sdpa")


def _student_source(recipe: Recipe, tok, teacher):
    """The model the student is built from: --init-from where given (same tokenizer as the teacher), else the teacher."""
    if not recipe.init_from:
        return teacher
    from .distill import check_same_tokenizer
    from .models import load_tokenizer
    check_same_tokenizer(tok, load_tokenizer(recipe.init_from))
    return _load(recipe.init_from)


def _student(recipe: Recipe, teacher):
    if recipe.from_model:
        return _load(recipe.from_model)
    from .student import build_student
    return build_student(teacher, num_hidden_layers=recipe.layers, hidden_size=recipe.hidden or None,
                         num_attention_heads=recipe.heads or None, intermediate_size=recipe.ffn or None,
                         init=recipe.init, teacher_layers=recipe.layer_list(),
                         attn_implementation="sdpa")   # as _load: DistillLoss sets it where maps are read


def _saved_teacher(recipe: Recipe, tok, data, teacher):
    """The file's logits in the teacher's place, checked against this run's windows (kit.teacher_outputs)."""
    from .checkpoint import digest
    from .teacher_outputs import SavedTeacher, describe
    print(describe(recipe.teacher_outputs))
    saved = SavedTeacher.load(recipe.teacher_outputs).for_windows(data, tok, recipe.max_length, recipe.stride)
    if saved.meta["teacher_weights"] != digest(teacher):
        raise ValueError(f"teacher outputs {recipe.teacher_outputs}: field teacher_weights differs from --teacher "
                         f"{recipe.teacher}: they were written by another teacher ({saved.meta['teacher']}). Name "
                         f"the teacher that wrote them with --teacher; to start the student from another model "
                         f"(e.g. a saved student), name that one with --init-from.")
    print(f"the logit term reads those outputs, written by --teacher {recipe.teacher}; the student is built from "
          f"{recipe.init_from or recipe.teacher}")
    return saved


def _layer_map(recipe: Recipe, student, teacher):
    from .layermap import LayerMap
    n_s, n_t = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    if recipe.layer_map == "copied":
        return LayerMap.copied(recipe.layer_list())
    return LayerMap.last_k(n_s, n_t) if recipe.layer_map == "last_k" else LayerMap.uniform(n_s, n_t)


def _data(recipe: Recipe, tok):
    """(training windows, []) for QA alone; (None, [kit.tasks.Task, ...]) for several tasks."""
    from .data import load_squad
    names = [t.strip() for t in recipe.tasks.split(",") if t.strip()]
    if names == ["qa"]:
        from .teacher_outputs import teacher_windows
        return teacher_windows(recipe.train, tok, recipe.max_length, recipe.stride, recipe.unlabelled), []
    if recipe.unlabelled:
        raise ValueError(f"recipe unlabelled {recipe.unlabelled!r}: unlabelled questions join QA-only runs "
                         f"(--tasks qa), not {recipe.tasks!r}.")
    examples, report = load_squad(recipe.train)
    print(report)
    if not names or names[0] != "qa":
        raise ValueError(f"recipe tasks {recipe.tasks!r}: start with qa, e.g. qa or qa,answerability.")
    from .tasks import make_task
    tasks = []
    for name in names:
        source = recipe.answerability_file if name == "answerability" and recipe.answerability_file else recipe.train
        task_examples = examples if source == recipe.train else load_squad(source)[0]
        tasks.append(make_task(name, task_examples, tok, recipe.max_length, recipe.stride, source=source))
    print({t.name: len(t.features) for t in tasks})
    return None, tasks


def _train_multitask(recipe: Recipe, cfg, student, tasks, teacher, common) -> list[dict]:
    from .multitask import MultiTaskLoss, MultiTaskModel
    from .tasks import MultiTaskData, TaskSampler
    from .train import train
    if recipe.mode == "distill":
        tasks[0].teacher = teacher
    model = MultiTaskModel(student, tasks)
    sampler = TaskSampler.for_tasks(tasks, recipe.sampling, recipe.sampling_temperature)
    loss = MultiTaskLoss(tasks, student=model, temperature=recipe.temperature)
    evaluate = common.pop("evaluate")
    # a multi-task student's evaluation scores its QA model: the same numbers as a single-task student's
    common["evaluate"] = evaluate and (lambda m: evaluate(m.qa))
    return train(model, MultiTaskData(tasks, sampler), cfg, loss_fn=loss, **common)


def _evaluator(recipe: Recipe, tok):
    if not recipe.eval:
        return None
    from .data import load_squad
    from .inference import evaluate_model
    examples, _ = load_squad(recipe.eval)
    return lambda m: evaluate_model(m, tok, examples, max_length=recipe.max_length, stride=recipe.stride)[0]


# ----------------------------------------------------------------------------- the record beside the model
def command_line(recipe: Recipe, cfg, skip=SKIP, names: dict | None = NAMES) -> str:
    """`python -m kit distill ...` that trains this recipe with this config: every value that differs from the
    dataclasses' defaults, in their flags (kit.cli), so that it reruns the same run."""
    return shlex.join(["python", "-m", "kit", "distill", *flags(recipe), "--out", cfg.out_dir,
                       *flags(cfg, skip, names)])


def machine() -> str:
    import torch
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, {torch.get_num_threads()} torch thread(s)"


def write_recipe(recipe: Recipe, cfg, command: str = "") -> Path:
    """cfg.out_dir/recipe.json: the recipe, the train config, the command that reruns them, the machine."""
    path = Path(cfg.out_dir) / RECIPE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": command or command_line(recipe, cfg), "recipe": dataclasses.asdict(recipe),
              "models": models_of(recipe), "train_config": dataclasses.asdict(cfg), "machine": machine()}
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def models_of(recipe: Recipe) -> dict:
    """Who taught the run and what its student started from, apart: the teacher, the model the student was built
    from, and (with saved outputs) the teacher the file names and the digest of its weights."""
    models = {"teacher": recipe.teacher if recipe.mode == "distill" else None,
              "student_from": recipe.from_model or recipe.init_from or recipe.teacher}
    if recipe.teacher_outputs:
        from .teacher_outputs import read_metadata
        meta = read_metadata(recipe.teacher_outputs)
        models["teacher_outputs"] = {"file": recipe.teacher_outputs, "written_by": meta["teacher"],
                                     "teacher_weights": meta["teacher_weights"]}
    return models


def read_recipe(model_dir) -> dict | None:
    """What write_recipe wrote beside a model; None where the model was not trained by a recipe."""
    path = Path(model_dir) / RECIPE_FILE
    return json.loads(path.read_text()) if path.exists() else None


# ----------------------------------------------------------------------------- the commands' options
def train_arguments(p):
    """`kit train`'s options: the data and windows, then every TrainConfig field (kit.cli)."""
    from .cli import add_options
    from .train import TrainConfig
    p.add_argument("--model", required=True, help="model directory (save_pretrained) or hub id to start from")
    p.add_argument("--train", required=True, help="SQuAD-format JSON file or URL to train on")
    p.add_argument("--eval", help="evaluated after each epoch; the best epoch is kept (never the test file)")
    p.add_argument("--out", required=True, help="where the best model, its log and its checkpoint go")
    p.add_argument("--max-length", type=int, default=384, help="tokens per window (default: %(default)s)")
    p.add_argument("--stride", type=int, default=128, help="tokens two windows of a context share (default: %(default)s)")
    p.add_argument("--fresh", action="store_true", help="start from scratch even if --out holds a checkpoint of "
                   "a run (by default it is continued, when its settings and data are this run's)")
    add_options(p, TrainConfig, skip=SKIP, names=NAMES)


def distill_arguments(p):
    """`kit distill`'s options: every Recipe field, then every TrainConfig field (kit.cli)."""
    from .cli import add_options
    from .train import TrainConfig
    p.add_argument("--out", required=True, help="where the student, its log, recipe.json and checkpoint go")
    p.add_argument("--fresh", action="store_true", help="start from scratch even if --out holds a checkpoint of "
                   "a run (by default it is continued, when its recipe, settings and data are this run's)")
    add_options(p, Recipe, title="the recipe (kit.recipes.Recipe)")
    add_options(p, TrainConfig, skip=SKIP, names=NAMES, title="the training loop (kit.train.TrainConfig)")
