"""Checkpoint content hashes: a byte flipped inside `last.pt` keeps its size and its zip structure,
so only the recorded sha256 finds it; the run then resumes from the previous checkpoint and says
which file was bad. Every instant of a save leaves one checkpoint that verifies."""

import logging
import os

import pytest
import torch

from accvideo.training.checkpoint import (
    hash_path,
    load_checkpoint,
    load_latest_checkpoint,
    previous_path,
    save_checkpoint,
    verify_checkpoint,
)
from accvideo.training.trainer import run_training
from tests.test_trainer import LinearMethod, config


def flip_a_byte(path, offset_from_end: int = 1000) -> None:
    """Change one byte well inside the file, keeping its size."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_last_two_checkpoints_are_kept_with_their_hashes(tmp_path):
    path = tmp_path / "last.pt"
    for step in (1, 2, 3):
        save_checkpoint(path, step=step, weights=torch.full((64,), float(step)))
    assert load_checkpoint(path)["step"] == 3 and load_checkpoint(previous_path(path))["step"] == 2
    assert verify_checkpoint(path) and verify_checkpoint(previous_path(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.pt.prev", "last.pt.prev.sha256",
                                                          "last.pt.sha256"]


def test_a_flipped_byte_falls_back_to_the_previous_checkpoint(tmp_path, caplog):
    path = tmp_path / "last.pt"
    save_checkpoint(path, step=1, weights=torch.ones(4096))
    save_checkpoint(path, step=2, weights=torch.ones(4096))
    size = path.stat().st_size
    flip_a_byte(path)
    assert path.stat().st_size == size
    with pytest.raises(ValueError, match=f"checkpoint '{path}' is corrupt: its sha256"):
        load_checkpoint(path)
    with caplog.at_level(logging.WARNING, logger="accvideo.train"):
        state, used = load_latest_checkpoint(path)
    assert used == previous_path(path) and state["step"] == 1
    assert f"checkpoint '{path}' is corrupt" in caplog.text and "Resuming from the previous checkpoint" in caplog.text
    flip_a_byte(previous_path(path))
    with pytest.raises(ValueError, match="No good checkpoint is left"):
        load_latest_checkpoint(path)


def test_every_instant_of_a_save_leaves_a_good_checkpoint(tmp_path, monkeypatch):
    """Kill `save_checkpoint` after each of its file operations: a resume still finds a good one."""
    import accvideo.training.checkpoint as ckpt

    real_replace, real_write = os.replace, ckpt.atomic_write_text
    for kill_after in range(4):  # the operations: prev sidecar, rename to prev, new sidecar, new file
        folder = tmp_path / str(kill_after)
        path = folder / "last.pt"
        save_checkpoint(path, step=1, weights=torch.ones(8))
        save_checkpoint(path, step=2, weights=torch.ones(8))
        done = []

        def counted(real, done=done, kill_after=kill_after):
            def op(*args, **kwargs):
                if len(done) == kill_after:
                    raise SystemExit("killed")
                done.append(1)
                return real(*args, **kwargs)
            return op

        monkeypatch.setattr(ckpt.os, "replace", counted(real_replace))
        monkeypatch.setattr(ckpt, "atomic_write_text", counted(real_write))
        with pytest.raises(SystemExit):
            save_checkpoint(path, step=3, weights=torch.ones(8))
        monkeypatch.setattr(ckpt.os, "replace", real_replace)
        monkeypatch.setattr(ckpt, "atomic_write_text", real_write)
        state, _ = load_latest_checkpoint(path)
        assert state["step"] in (2, 3), kill_after
        assert not list(folder.glob(".*.tmp"))  # the killed save's temp file is cleaned on resume


def test_a_corrupt_last_checkpoint_resumes_from_the_previous_to_the_same_end(tmp_path, caplog):
    straight = LinearMethod()
    run_training(straight, config(steps=4, checkpoint_every=1), config(), tmp_path / "straight")
    run = tmp_path / "run"
    run_training(LinearMethod(), config(steps=3, checkpoint_every=1), config(), run)
    last = run / "checkpoints" / "last.pt"
    flip_a_byte(last)
    resumed = LinearMethod()
    with caplog.at_level(logging.WARNING, logger="accvideo.train"):
        summary = run_training(resumed, config(steps=4, checkpoint_every=1), config(), run)
    assert summary["resumed_from"] == 2  # step 3's checkpoint was bad; step 2's was kept
    assert f"checkpoint '{last}' is corrupt" in caplog.text
    assert torch.equal(resumed.model.weight, straight.model.weight)
    assert verify_checkpoint(last) and hash_path(last).exists()


def test_verify_names_a_corrupt_checkpoint_of_a_run_folder(tmp_path, capsys):
    import json

    from accvideo.cli import main

    run_training(LinearMethod(), config(steps=2, checkpoint_every=1), config(), tmp_path)
    assert main(["verify", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoints_checked"] == 2  # last.pt and last.pt.prev
    flip_a_byte(tmp_path / "checkpoints" / "last.pt.prev")
    assert main(["verify", str(tmp_path)]) == 2
    assert f"checkpoint '{tmp_path / 'checkpoints' / 'last.pt.prev'}' is corrupt" in capsys.readouterr().err
