import pickle

import numpy as np
import pytest
import torch

from asr.checkpoint import CheckpointError, inference_payload, load_checkpoint, save_checkpoint
from asr.config import to_dict
from asr.features import FeatureConfig, FeatureExtractor
from asr.inference.recognizer import Recognizer
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.training.loop import ExperimentConfig


def small_payload():
    cfg = ExperimentConfig(model=ModelConfig(hidden_size=16, num_layers=1))
    vocab = Vocabulary.english()
    torch.manual_seed(0)
    model = AcousticModel(cfg.model, cfg.features.n_mels, len(vocab))
    mean, std = torch.randn(80), torch.rand(80) + 0.5
    payload = inference_payload(to_dict(cfg), vocab.to_list(), mean, std, model.state_dict())
    return payload, model


def test_round_trip_rebuilds_the_same_recognizer(tmp_path, noise):
    payload, model = small_payload()
    save_checkpoint(tmp_path / "model.pt", payload)
    recognizer = Recognizer.from_checkpoint(tmp_path)  # a folder means folder/model.pt
    for key, value in model.state_dict().items():
        torch.testing.assert_close(recognizer.runner.model.state_dict()[key], value)
    torch.testing.assert_close(recognizer.runner.extractor.mean, payload["features"]["mean"])
    extractor = FeatureExtractor(FeatureConfig())
    extractor.set_global_stats(payload["features"]["mean"], payload["features"]["std"])
    wave = torch.from_numpy(noise(0.5))[None]
    lens = torch.tensor([wave.shape[1]])
    with torch.no_grad():
        expected, _ = model.eval()(*extractor(wave, lens))
        got, _ = recognizer.log_probs([wave[0].numpy()])
    torch.testing.assert_close(torch.from_numpy(got), expected)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.pt")


def test_random_bytes(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="junk.pt: not a readable asr checkpoint"):
        load_checkpoint(path)


def test_truncated_file(tmp_path):
    payload, _ = small_payload()
    path = tmp_path / "model.pt"
    save_checkpoint(path, payload)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.pt"):
        load_checkpoint(path)


class _Exploit:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_loading_never_runs_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "asr-checkpoint", "payload": _Exploit()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not an asr checkpoint"):
        load_checkpoint(path)


def test_inconsistent_weights(tmp_path):
    payload, _ = small_payload()
    payload["config"]["model"]["hidden_size"] = 32  # weights are for 16
    save_checkpoint(tmp_path / "model.pt", payload)
    with pytest.raises(CheckpointError, match="inconsistent checkpoint"):
        Recognizer.from_checkpoint(tmp_path / "model.pt")


def test_save_is_atomic(tmp_path, monkeypatch):
    payload, _ = small_payload()
    path = tmp_path / "model.pt"
    save_checkpoint(path, payload)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(CheckpointError, match="disk full.*untouched"):  # a message, not OSError
        save_checkpoint(path, payload)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left


def test_export_half_precision_with_lm(tmp_path, noise):
    from asr.cli import main
    from asr.inference.export import weights_dtype

    payload, _ = small_payload()
    save_checkpoint(tmp_path / "exp" / "best.pt", {**payload, "train_state": {"step": 3}})
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "lm.bin").write_bytes(b"kenlm")
    (lm / "lexicon.txt").write_text("a a |\n")
    out = tmp_path / "bundle"
    args = ["export", str(tmp_path / "exp" / "best.pt"), "--out", str(out), "--half"]
    assert main([*args, "--lm", str(lm)]) == 0
    assert weights_dtype(out / "model.pt") == torch.float16
    assert "train_state" not in load_checkpoint(out / "model.pt")
    assert (out / "lm" / "lm.bin").read_bytes() == b"kenlm"
    wave = noise(0.5)
    full, _ = Recognizer.from_checkpoint(tmp_path / "exp" / "best.pt").log_probs([wave])
    half, _ = Recognizer.from_checkpoint(out).log_probs([wave])
    np.testing.assert_allclose(half, full, atol=2e-2, rtol=0)


def test_export_refuses_an_incomplete_lm_folder(tmp_path):
    from asr.inference.export import export_model
    from asr.inference.lm import LMError

    payload, _ = small_payload()
    save_checkpoint(tmp_path / "model.pt", payload)
    (tmp_path / "lm").mkdir()
    with pytest.raises(LMError, match="lm.bin"):
        export_model(tmp_path / "model.pt", tmp_path / "out", lm_dir=tmp_path / "lm")
    assert not (tmp_path / "out").exists()


def test_a_model_folder_changes_all_at_once_or_not_at_all(tmp_path, monkeypatch):
    import asr.inference.onnx_export
    from asr.inference.export import export_model
    from asr.inference.lm import LMError

    payload, _ = small_payload()
    save_checkpoint(tmp_path / "b.pt", payload)
    out = tmp_path / "model"
    out.mkdir()
    folder = {"model.pt": b"run A", "model.onnx": b"run A's graph", "decoding.json": b"{}"}
    for name, data in folder.items():
        (out / name).write_bytes(data)
    (tmp_path / "lm").mkdir()
    with pytest.raises(LMError, match="lm.bin"):  # a bad --lm: checked first
        export_model(tmp_path / "b.pt", out, lm_dir=tmp_path / "lm")

    def trace_fails(*args, **kwargs):
        raise RuntimeError("the trace failed")

    monkeypatch.setattr(asr.inference.onnx_export, "export_onnx", trace_fails)
    with pytest.raises(RuntimeError, match="trace failed"):  # after model.pt was written
        export_model(tmp_path / "b.pt", out, onnx=True)
    assert {p.name: p.read_bytes() for p in tmp_path.joinpath("model").iterdir()} == folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pt", "lm", "model"]  # no staging
    export_model(tmp_path / "b.pt", out)  # no graph this time: run A's goes
    assert sorted(p.name for p in out.iterdir()) == ["decoding.json", "model.pt"]
    assert load_checkpoint(out)["vocab"] == payload["vocab"]


def test_a_real_full_disk_is_a_checkpoint_write_error(tmp_path):
    """On a full file system torch's zip writer raises a RuntimeError ("unexpected pos")
    whose __context__ is the OSError: still a CheckpointWriteError saying so."""
    from test_bad_input import fill_disk, small_disk

    from asr.checkpoint import CheckpointWriteError

    payload = {"config": {}, "vocab": [], "features": {}}
    with small_disk(tmp_path / "disk", "2M") as disk:
        save_checkpoint(disk / "model.pt", {**payload, "model": {"w": torch.ones(3)}})
        fill_disk(disk, leave=8192)
        big = {"a": torch.zeros(30_000), "b": torch.zeros(30_000)}  # 240 KB
        with pytest.raises(CheckpointWriteError, match=r"model.pt: .*\(the disk is full\)"):
            save_checkpoint(disk / "model.pt", {**payload, "model": big})
        assert load_checkpoint(disk / "model.pt")["model"]["w"].tolist() == [1, 1, 1]
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "model.pt"]


def test_checkpoints_are_readable_by_others_as_the_umask_says(tmp_path):
    import os

    payload = {"config": {}, "vocab": [], "features": {}, "model": {}}
    previous = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "model.pt", payload)
        assert (tmp_path / "model.pt").stat().st_mode & 0o777 == 0o644  # mkstemp made 0600
        os.umask(0o027)
        save_checkpoint(tmp_path / "averaged.pt", payload)
        assert (tmp_path / "averaged.pt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)
