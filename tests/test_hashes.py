"""A byte flipped inside a weights file keeps its size and its safetensors header: only the recorded
sha256 finds it. `verify` names the file, and loading refuses it before any video is made."""

from __future__ import annotations

import json
import shutil

import pytest

from accvideo.cli import main
from accvideo.models.registry import ASSETS, load_model
from accvideo.util.hashes import HASH_FILE, verify_hashes, write_hashes

WEIGHTS = "transformer/diffusion_pytorch_model.safetensors"


@pytest.fixture
def teacher_copy(tmp_path):
    folder = tmp_path / "teacher"
    shutil.copytree(ASSETS / "tiny-teacher", folder)
    return folder


def flip_a_byte(path, offset_from_end: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def test_bundled_models_record_their_hashes():
    for name in ("tiny-teacher", "tiny-accvideo", "tiny-gpd"):
        recorded = json.loads((ASSETS / name / HASH_FILE).read_text())
        assert WEIGHTS in recorded and verify_hashes(ASSETS / name) == len(recorded) == 3


def test_a_flipped_byte_is_named_by_verify_and_refused_by_generate(teacher_copy, capsys):
    assert main(["verify", str(teacher_copy)]) == 0
    assert json.loads(capsys.readouterr().out)["hashed_files_checked"] == 3
    size = (teacher_copy / WEIGHTS).stat().st_size
    flip_a_byte(teacher_copy / WEIGHTS)
    assert (teacher_copy / WEIGHTS).stat().st_size == size  # the size check alone cannot see it
    assert main(["verify", str(teacher_copy)]) == 2
    err = capsys.readouterr().err
    assert f"weights file {WEIGHTS} does not match its recorded sha256" in err
    out = teacher_copy.parent / "clip.mp4"
    assert main(["generate", "--model", str(teacher_copy), "--prompt", "a red circle moving left",
                 "--steps", "1", "--out", str(out)]) == 2
    assert f"weights file {WEIGHTS} does not match its recorded sha256" in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_or_corrupt_hash_list_is_named(teacher_copy):
    (teacher_copy / WEIGHTS).unlink()
    with pytest.raises(ValueError, match=f"weights file {WEIGHTS} listed in {HASH_FILE} is missing"):
        verify_hashes(teacher_copy)
    shutil.copy(ASSETS / "tiny-teacher" / WEIGHTS, teacher_copy / WEIGHTS)
    (teacher_copy / HASH_FILE).write_text("[1, 2")
    with pytest.raises(ValueError, match=f"{HASH_FILE} is unreadable or corrupt"):
        load_model(teacher_copy, cached=False)


def test_write_then_verify_round_trip(teacher_copy):
    (teacher_copy / HASH_FILE).unlink()
    assert verify_hashes(teacher_copy) == 0
    assert len(write_hashes(teacher_copy)) == 3 and verify_hashes(teacher_copy) == 3
