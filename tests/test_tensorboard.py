"""TensorBoard (TrainConfig.tensorboard, through accelerate's tracker): every numeric scalar of every log.jsonl
entry at its update, the same steps as the log, also across a kill and a resume (event files are append-only:
the folder is rewritten from the checkpoint's history at each start)."""
import json

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from kit.features import make_features
from kit.models import load_qa_model
from kit.train import TrainConfig, read_log, task_loss, train
from test_rerun import Killed, killed_at


def events(out_dir):
    """{tag: [(step, value, wall_time), ...]} of every raw scalar event under out_dir/tensorboard/, in file order
    (duplicates kept: what the files hold, not what TensorBoard's reader shows)."""
    found = {}
    for path in sorted((out_dir / "tensorboard").rglob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                scalar = value.tensor.float_val[0] if value.HasField("tensor") else value.simple_value
                found.setdefault(value.tag, []).append((event.step, scalar, event.wall_time))
    return found


def shown(out_dir):
    """{tag: [(step, value)]} as TensorBoard's reader shows them."""
    acc = EventAccumulator(str(out_dir / "tensorboard"))
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected(out_dir):
    """{tag: [(step, value)]} from log.jsonl: each entry's numeric scalars as "<kind>/<name>" at its update."""
    want = {}
    for e in read_log(out_dir):
        for k, v in e.items():
            if k not in ("kind", "update") and isinstance(v, (int, float)) and not isinstance(v, bool):
                want.setdefault(f"{e['kind']}/{k}", []).append((e["update"], v))
    return want


def assert_in_step(out_dir):
    want, raw = expected(out_dir), events(out_dir)
    assert set(raw) == set(want) == set(shown(out_dir))
    for tag, points in want.items():
        assert [s for s, _, _ in raw[tag]] == [s for s, _ in points], tag      # each step once, in order
        assert [v for _, v, _ in raw[tag]] == pytest.approx([v for _, v in points], rel=1e-5), tag
    for tag, points in shown(out_dir).items():                                   # and as TensorBoard shows them
        assert [s for s, _ in points] == [s for s, _ in want[tag]], tag
        assert [v for _, v in points] == pytest.approx([v for _, v in want[tag]], rel=1e-5), tag
    # wall time is the run's clock: a resumed run reads as one run there too
    walls = [w for _, _, w in raw["train/seconds"]]
    seconds = [v for _, v in want["train/seconds"]]
    assert [w - walls[0] for w in walls] == pytest.approx([s - seconds[0] for s in seconds], abs=0.02)


def test_tensorboard_holds_the_logs_steps_also_across_a_kill_and_a_resume(tiny, tmp_path):
    _, examples, tok, _, model_dir = tiny
    feats = make_features(examples, tok, 64, 16)
    scores = iter(range(100))
    evaluate = lambda model: {"f1": float(next(scores)), "exact_match": 1.5, "n": 8}
    run = TrainConfig(out_dir=str(tmp_path / "whole"), epochs=3, batch_size=2, lr=1e-3, log_every=3, save_every=2,
                      tensorboard=True)
    go = lambda cfg, kill: train(load_qa_model(model_dir), feats, cfg, pad_id=tok.pad_token_id, evaluate=evaluate,
                                 loss_fn=killed_at(task_loss, kill, 0.02))
    go(run, 0)
    assert_in_step(tmp_path / "whole")
    tags = set(events(tmp_path / "whole"))
    assert {"train/loss", "train/task", "train/lr", "train/seconds", "train/sec_per_update", "eval/f1",
            "eval/exact_match"} <= tags
    assert [s for s, _, _ in events(tmp_path / "whole")["train/loss"]] == [3, 6, 9, 12]
    assert [s for s, _, _ in events(tmp_path / "whole")["eval/f1"]] == [4, 8, 12]

    cut = run.replace(out_dir=str(tmp_path / "cut"))
    with pytest.raises(Killed):      # killed in update 10: update 9 was logged, the last save was at update 8
        go(cut, 10)
    assert [s for s, _, _ in events(tmp_path / "cut")["train/loss"]] == [3, 6, 9]
    go(cut, 0)                       # resumed from update 8: update 9 is logged again, once
    assert_in_step(tmp_path / "cut")
    assert [s for s, _, _ in events(tmp_path / "cut")["train/loss"]] == [3, 6, 9, 12]
    assert [s for s, _, _ in events(tmp_path / "cut")["eval/f1"]] == [4, 8, 12]


def test_without_the_option_no_tensorboard_folder_stays_behind(tiny, tmp_path):
    _, examples, tok, _, model_dir = tiny
    feats = make_features(examples, tok, 64, 16)
    run = TrainConfig(out_dir=str(tmp_path / "m"), epochs=1, batch_size=4, log_every=1, tensorboard=True)
    train(load_qa_model(model_dir), feats, run, pad_id=tok.pad_token_id)
    assert [s for s, _, _ in events(tmp_path / "m")["train/loss"]] == [1, 2]
    # a fresh start without the option: the old run's events would no longer match log.jsonl
    train(load_qa_model(model_dir), feats, run.replace(tensorboard=False, resume=False), pad_id=tok.pad_token_id)
    assert not (tmp_path / "m" / "tensorboard").exists()
    assert json.loads((tmp_path / "m" / "train_config.json").read_text())["tensorboard"] is False
