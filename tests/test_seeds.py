"""What a run creates at random comes from its seed; fp16's skipped steps stay visible to accelerate; a run from
saved teacher outputs names its teacher and its student's starting point apart."""
import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from kit.recipes import Recipe, train_recipe
from kit.train import TrainConfig, build_optimizer


def initial_weights(tiny, tmp_path, name, seed):
    """The student and the projection as a run of `seed` creates them: one update at learning rate 0 (AdamW then
    changes nothing, weight decay included), the student saved, the projection in the checkpoint."""
    recipe = Recipe(teacher=str(tiny[4]), train=str(tiny[0]), layers=1, hidden=16, heads=4, init="random",
                    max_length=64, stride=16)
    cfg = TrainConfig(out_dir=str(tmp_path / name), epochs=1, batch_size=4, lr=0.0, seed=seed, num_threads=1,
                      mixed_precision="no", max_updates=1, log_every=1)
    train_recipe(recipe, cfg)
    student = load_file(tmp_path / name / "model.safetensors")
    projection = load_file(tmp_path / name / "checkpoint-last" / "loss_state.safetensors")
    return student, projection


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_seed_reaches_the_students_weights_and_the_projection(tiny, tmp_path):
    s0, p0 = initial_weights(tiny, tmp_path, "a", seed=0)
    s0_again, p0_again = initial_weights(tiny, tmp_path, "b", seed=0)
    s1, p1 = initial_weights(tiny, tmp_path, "c", seed=1)
    assert p0 and same(s0, s0_again) and same(p0, p0_again)
    encoder = [k for k in s0 if ".layer.0." in k and k.endswith("weight") and s0[k].ndim == 2]
    assert encoder and all(not torch.equal(s0[k], s1[k]) for k in encoder)
    assert all(not torch.equal(p0[k], p1[k]) for k in p0)


def bare_scaler_step(mixed_precision):
    """One update whose gradient overflows, through the kit's optimizer, accelerate's wrappers and a bare CPU
    GradScaler (as accelerate's own fix for issue 4242 tests it): (step_was_skipped, weights kept, lr kept)."""
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.scheduler import AcceleratedScheduler
    model = torch.nn.Linear(3, 2)
    optimizer, scheduler, _ = build_optimizer(model.named_parameters(), TrainConfig(lr=1e-3, warmup=0.5), 10, 1,
                                              mixed_precision)
    scaler = torch.amp.GradScaler("cpu")
    wrapped = AcceleratedOptimizer(optimizer, device_placement=False, scaler=scaler)
    wrapped_scheduler = AcceleratedScheduler(scheduler, wrapped, step_with_optimizer=True)
    before, lr = model.weight.detach().clone(), scheduler.get_last_lr()
    scaler.scale((model(torch.ones(1, 3)) * 1e38).sum()).backward()     # × the scale 65,536: inf in fp32
    assert not torch.isfinite(model.weight.grad).all()
    wrapped.step()
    wrapped_scheduler.step()
    return wrapped.step_was_skipped, torch.equal(model.weight, before), scheduler.get_last_lr() == lr


def test_fp16_skips_an_overflowing_step_and_its_schedule_step_too():
    assert bare_scaler_step("fp16") == (True, True, True)
    # the fused AdamW that other precisions keep (faster) hides the skip from accelerate: the weights stay, but the
    # schedule moves on (accelerate issue 4242), which is why fp16 does without it
    assert bare_scaler_step("no") == (False, True, False)


def test_saved_outputs_must_come_from_the_named_teacher_and_the_students_source_is_its_own_flag(tiny, tmp_path):
    from kit.checkpoint import digest
    from kit.models import build_qa_model, load_qa_model
    from kit.teacher_outputs import save_teacher_outputs, teacher_windows
    path, _, tok, cfg, teacher_dir = tiny
    feats = teacher_windows(str(path), tok, 64, 16)
    outputs = save_teacher_outputs(load_qa_model(teacher_dir), tok, feats, tmp_path / "outputs.safetensors",
                                   max_length=64, stride=16, teacher_name=str(teacher_dir))
    other = tmp_path / "other"
    torch.manual_seed(5)
    build_qa_model(cfg).save_pretrained(other)
    tok.save_pretrained(other)
    loop = TrainConfig(epochs=1, batch_size=4, lr=1e-3, num_threads=1, mixed_precision="no", max_updates=2)
    base = Recipe(teacher=str(other), train=str(path), teacher_outputs=str(outputs), attention_weight=0.0,
                  hidden_weight=0.0, layers=1, init="teacher_layers", max_length=64, stride=16)
    with pytest.raises(ValueError, match="field teacher_weights differs.*--init-from"):
        train_recipe(base, loop.replace(out_dir=str(tmp_path / "refused")))
    # the teacher that wrote them teaches; the student starts from another model's layers
    recipe = dataclasses.replace(base, teacher=str(teacher_dir), init_from=str(other))
    train_recipe(recipe, loop.replace(out_dir=str(tmp_path / "run")))
    models = json.loads((tmp_path / "run" / "recipe.json").read_text())["models"]
    assert models["teacher"] == str(teacher_dir) and models["student_from"] == str(other)
    assert models["teacher_outputs"]["written_by"] == str(teacher_dir)
    assert models["teacher_outputs"]["teacher_weights"] == digest(load_qa_model(teacher_dir))
