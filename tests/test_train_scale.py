"""Training at scale on a tiny tone corpus: exact resume after SIGKILL, DDP on two Gloo
processes against one process with the same global batches, non-finite steps,
--init-from, checkpoint averaging."""

import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from asr.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from asr.config import ConfigError, apply_overrides, to_toml
from asr.corpora.tones import make_tone_corpus
from asr.training.average import average_checkpoints, average_experiment, select_checkpoints
from asr.training.config import ExperimentConfig
from asr.training.epoch import NonFiniteLossError, train_one_epoch
from asr.training.loop import fit
from asr.training.state import load_init_weights, model_payload, resume_state, training_payload
from asr.training.trainer import build_trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tone_corpus(tmp_path_factory.mktemp("tones"), 24, seed=3)


def _config(manifest, *overrides):
    base = [
        f'data.train_manifest="{manifest}"',
        f'data.valid_manifest="{manifest}"',
        "data.num_workers=0",
        "data.max_batch_seconds=8.0",
        "data.num_buckets=3",
        'model.rnn_type="gru"',
        "model.num_layers=1",
        "model.hidden_size=16",
        "model.conv_channels=4",
        "model.subsampling=2",
        "features.n_mels=40",
        "optim.lr=0.003",
        "optim.warmup_steps=3",
        "optim.epochs=2",
        'train.device="cpu"',
        'train.precision="fp32"',
        "train.stats_utterances=8",
        "train.tensorboard=false",
    ]
    return apply_overrides(ExperimentConfig(), base + list(overrides))


def _weights(path):
    return load_checkpoint(path)["model"]


def _assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=0.0, equal_nan=True, msg=name)


# A training subprocess that SIGKILLs itself at the start of step KILL_AT: no handler,
# no cleanup, exactly what the OOM killer or a pulled plug does.
_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    import asr.training.epoch as epoch
    from asr.cli import main

    torch.set_num_threads(1)
    kill_at = int(os.environ["KILL_AT"])
    step = epoch.train_step

    def dying_step(tr, batches):
        if tr.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(tr, batches)

    epoch.train_step = dying_step
    sys.exit(main(sys.argv[1:]))
    """
)


def test_resume_after_sigkill_matches_an_uninterrupted_run(corpus, tmp_path):
    cfg = _config(
        corpus,
        "augment.spec_augment=true",
        "augment.speed_perturb=true",
        "augment.noise_prob=0.5",
        "model.dropout=0.2",
        "train.save_every_steps=2",
        "data.early_batch_seconds=4.0",  # epoch 1 in small batches, epoch 2 in 8 s ones
        "data.early_batch_epochs=1",
    )
    config_file = tmp_path / "config.toml"
    config_file.write_text(to_toml(cfg))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = fit(cfg, tmp_path / "reference")
    finally:
        torch.set_num_threads(threads)
    total_steps = reference.step
    written = {p.name for p in (tmp_path / "reference").iterdir()}
    assert {"curves.png", "train.txt", "train.log", "epochs", "model.pt", "last.pt"} <= written
    assert total_steps >= 6
    # After the first save (step 2) and before the last step; printed by a failing assert.
    kill_at = random.Random(os.getpid()).randint(3, total_steps - 2)
    exp = tmp_path / "killed"
    args = ["train", "--config", str(config_file), "--exp-dir", str(exp)]
    env = {**os.environ, "KILL_AT": str(kill_at), "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", _KILLED_RUN, *args], env=env, cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL, f"kill at step {kill_at} of {total_steps}"
    saved = load_checkpoint(exp / "last.pt")["train_state"]["step"]
    assert saved <= kill_at
    env["KILL_AT"] = "-1"
    resumed = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, *args, "--resume"], env=env, cwd=ROOT
    )
    assert resumed.returncode == 0
    assert load_checkpoint(exp / "last.pt")["train_state"]["step"] == total_steps
    _assert_same(_weights(exp / "last.pt"), _weights(tmp_path / "reference" / "last.pt"))


def test_resume_without_checkpoint_is_an_error(corpus, tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        fit(_config(corpus), tmp_path / "empty", resume=True)


def test_ddp_two_gloo_processes_match_one_process_with_the_same_global_batches(corpus, tmp_path):
    """2 ranks x 1 batch per step vs 1 process accumulating 2 batches per step."""
    cfg = _config(corpus, "optim.epochs=1", "model.dropout=0.0")
    config_file = tmp_path / "config.toml"
    config_file.write_text(to_toml(cfg))
    single = fit(apply_overrides(cfg, ["optim.grad_accum=2"]), tmp_path / "single")
    assert single.step >= 3
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    ddp_args = ["--nproc-per-node", "2", "-m", "asr", "train", "--config", str(config_file)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [*torchrun, *ddp_args, "--exp-dir", str(tmp_path / "ddp")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    state = load_checkpoint(tmp_path / "ddp" / "last.pt")["train_state"]
    assert state["step"] == single.step and state["world_size"] == 2
    # Gradients are summed in another order across processes: equal up to float rounding.
    _assert_same(
        _weights(tmp_path / "ddp" / "last.pt"), _weights(tmp_path / "single" / "last.pt"), atol=1e-5
    )
    ddp_log = (tmp_path / "ddp" / "train.log").read_text().splitlines()
    single_log = (tmp_path / "single" / "train.log").read_text().splitlines()
    assert len(ddp_log) == len(single_log) == 1  # rank 0 alone wrote the log


def test_nonfinite_steps_are_skipped_then_stop_training(corpus, tmp_path):
    cfg = _config(corpus, "train.max_bad_steps=3")
    tr = build_trainer(cfg, tmp_path)
    with torch.no_grad():
        tr.model.output.bias[0] = math.nan  # every loss is NaN from now on
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps"):
        train_one_epoch(tr)
    assert tr.nonfinite_steps == 3 and tr.step == 3
    _assert_same(tr.model.state_dict(), before)  # no update was applied


def test_one_nonfinite_step_is_skipped_and_counted(corpus, tmp_path, monkeypatch):
    import asr.training.epoch as epoch

    calls = []
    compute_loss = epoch.compute_loss

    def poisoned(*args, **kwargs):
        result = compute_loss(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            result.loss = result.loss * math.inf
        return result

    monkeypatch.setattr(epoch, "compute_loss", poisoned)
    tr = build_trainer(_config(corpus), tmp_path)
    metrics = train_one_epoch(tr)
    assert metrics["nonfinite_steps"] == 1 and tr.bad_steps == 0
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_init_from_loads_weights_and_statistics_and_refuses_other_shapes(corpus, tmp_path):
    """The donor's weights and feature statistics come along; other [model] shapes are
    refused. Another vocabulary is not refused (its output layer starts afresh:
    test_init_from_another_vocabulary_keeps_the_encoder_only)."""
    donor = build_trainer(_config(corpus), tmp_path)
    donor.extractor.set_global_stats(torch.full((40,), 3.0), torch.full((40,), 2.0))
    payload = model_payload(donor)
    save_checkpoint(tmp_path / "good.pt", payload)
    wide = build_trainer(_config(corpus, "model.hidden_size=24"), tmp_path)
    save_checkpoint(tmp_path / "shape.pt", model_payload(wide))

    tr = build_trainer(_config(corpus, "train.seed=7"), tmp_path)
    load_init_weights(tr, tmp_path / "good.pt")
    _assert_same(tr.model.state_dict(), donor.model.state_dict())
    # The weights were learned on the donor's normalization: its statistics come along.
    assert torch.equal(tr.extractor.mean, donor.extractor.mean)
    assert torch.equal(tr.extractor.std, donor.extractor.std)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_init_weights(tr, tmp_path / "shape.pt")


def _init_across(corpus, tmp_path, donor_setting: str, run_setting: str):
    """A 2-layer run initialized from a 2-layer donor of another kind: (run, its weights
    before and after, the donor's)."""
    two = "model.num_layers=2"
    donor = build_trainer(_config(corpus, two, donor_setting), tmp_path)
    save_checkpoint(tmp_path / "donor.pt", model_payload(donor))
    tr = build_trainer(_config(corpus, two, run_setting, "train.seed=7"), tmp_path)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    load_init_weights(tr, tmp_path / "donor.pt")
    return tr, before, tr.model.state_dict(), donor.model.state_dict()


def test_init_from_another_vocabulary_keeps_the_encoder_only(corpus, tmp_path, caplog):
    """A phone model can start from a character model's encoder: all but the output layer
    (and the character model's phone head, which the phone model lacks) are loaded."""
    tr, before, after, source = _init_across(
        corpus, tmp_path, "model.aux_layer=1", 'model.units="phones"'
    )
    assert after["output.weight"].shape[0] == len(tr.vocab) == 41
    assert torch.equal(after["output.weight"], before["output.weight"])  # afresh
    encoder = [k for k in after if not k.startswith("output.")]
    assert encoder and all(torch.equal(after[k], source[k]) for k in encoder)
    assert "the output layer starts afresh" in caplog.text


def test_init_from_a_model_without_a_phone_head_starts_the_head_afresh(corpus, tmp_path):
    """A character model with a phone head can start from a phone model's encoder."""
    _, before, after, source = _init_across(
        corpus, tmp_path, 'model.units="phones"', "model.aux_layer=1"
    )
    fresh = [k for k in after if k.startswith(("output.", "aux_output."))]
    assert len(fresh) == 4 and all(torch.equal(after[k], before[k]) for k in fresh)
    assert all(torch.equal(after[k], source[k]) for k in after if k not in fresh)


def test_init_from_a_model_without_a_summary_starts_it_at_zero(corpus, tmp_path, caplog):
    """Issue 32, direction 3: a run with model.summary_layer starts from a donor without one:
    the donor's weights all come along, the summary's projection is zero (adds nothing)."""
    caplog.set_level("INFO")
    _, _, after, source = _init_across(corpus, tmp_path, "train.seed=3", "model.summary_layer=1")
    fresh = [k for k in after if k.startswith("rnn.summary.")]
    assert len(fresh) == 2 and all(not after[k].any() for k in fresh)
    assert all(torch.equal(after[k], source[k]) for k in after if k not in fresh)
    assert "no utterance summary" in caplog.text


def test_resume_refuses_weights_of_another_shape(corpus, tmp_path):
    wide = build_trainer(_config(corpus, "model.hidden_size=24"), tmp_path)
    save_checkpoint(tmp_path / "last.pt", training_payload(wide, []))
    tr = build_trainer(_config(corpus), tmp_path)
    with pytest.raises(CheckpointError, match="last.pt: weights do not fit"):
        resume_state(tr, tmp_path / "last.pt")


def test_resume_and_init_from_exclude_each_other(corpus, tmp_path):
    with pytest.raises(ConfigError, match="exclude each other"):
        fit(_config(corpus), tmp_path, resume=True, init_from=tmp_path / "x.pt")


def _epoch_checkpoint(exp, epoch, value, wer):
    payload = {
        "config": {},
        "vocab": ["<blank>", "a"],
        "features": {"mean": torch.zeros(2), "std": torch.ones(2)},
        "model": {"w": torch.full((2,), float(value)), "n": torch.tensor(epoch)},
        "metrics": {"epoch": epoch, "valid_wer": wer},
    }
    save_checkpoint(exp / "epochs" / f"epoch-{epoch:03d}.pt", payload)


@pytest.mark.parametrize(
    "by,num,epochs,mean",
    [("last", 2, [3, 4], 3.5), ("best", 2, [1, 3], 2.0), ("last", 1, [4], 4.0)],
)
def test_average_last_or_best(tmp_path, by, num, epochs, mean):
    for epoch, wer in zip([1, 2, 3, 4], [0.2, 0.5, 0.1, 0.4], strict=True):
        _epoch_checkpoint(tmp_path, epoch, epoch, wer)
    chosen = select_checkpoints(tmp_path, num, by)
    assert [int(p.stem.split("-")[1]) for p in chosen] == epochs
    out = average_experiment(tmp_path, num, by)
    model = load_checkpoint(out)["model"]
    assert torch.allclose(model["w"], torch.full((2,), mean))
    assert int(model["n"]) == epochs[-1]  # integer buffers: from the last checkpoint


def test_a_run_shorter_than_its_averaging_window_averages_what_it_has(corpus, tmp_path, caplog):
    """optim.epochs=1 with train.average_last=5 (issue 31): the run ends with model.pt and
    averaged.pt of its 1 epoch, saying so; resumed to 2 epochs it averages those 2; an
    earlier, longer run's epoch files left in the folder are not averaged."""
    exp = tmp_path / "exp"
    _epoch_checkpoint(exp, 3, 3.0, 0.1)  # a stale epoch-003.pt of an earlier run
    short = _config(corpus, "optim.epochs=1", "train.average_last=5", 'train.average_by="best"')
    with caplog.at_level(logging.WARNING, logger="asr"):
        fit(short, exp)
    assert "train.average_last = 5, but the run has 1 epoch checkpoint(s)" in caplog.text
    assert (exp / "model.pt").is_file()
    averaged = load_checkpoint(exp / "averaged.pt")["averaged_from"]
    assert [Path(p).name for p in averaged] == ["epoch-001.pt"]
    fit(apply_overrides(short, ["optim.epochs=2"]), exp, resume=True)
    averaged = load_checkpoint(exp / "averaged.pt")["averaged_from"]
    assert [Path(p).name for p in averaged] == ["epoch-001.pt", "epoch-002.pt"]


def test_average_command(tmp_path, capsys):
    from asr.cli import main

    for epoch in (1, 2, 3):
        _epoch_checkpoint(tmp_path, epoch, epoch, 0.5)
    out = tmp_path / "avg.pt"
    assert main(["average", str(tmp_path), "--last", "2", "--out", str(out)]) == 0
    assert "epoch-002.pt, epoch-003.pt" in capsys.readouterr().out
    assert torch.allclose(load_checkpoint(out)["model"]["w"], torch.full((2,), 2.5))
    assert main(["average", str(tmp_path / "none"), "--best", "1"]) == 2


def test_average_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no epoch"):
        select_checkpoints(tmp_path, 1)
    _epoch_checkpoint(tmp_path, 1, 1.0, 0.1)
    with pytest.raises(CheckpointError, match="2 checkpoints asked for"):
        select_checkpoints(tmp_path, 2)  # asked for by name (asr average): refused
    _epoch_checkpoint(tmp_path, 2, 2.0, 0.1)
    assert [p.name for p in select_checkpoints(tmp_path, 1, up_to=1)] == ["epoch-001.pt"]
    with pytest.raises(ValueError):
        average_checkpoints([])


def test_crash_while_writing_keeps_the_previous_last_checkpoint(tmp_path, monkeypatch):
    good = {"config": {}, "vocab": ["<blank>"], "features": {}, "model": {"w": torch.ones(3)}}
    save_checkpoint(tmp_path / "last.pt", good)

    def dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    # asr.checkpoint imports torch when it writes (the light runtime has no torch): patch
    # the module it will import.
    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(CheckpointError, match="disk full"):
        save_checkpoint(tmp_path / "last.pt", {**good, "model": {"w": torch.zeros(3)}})
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["model"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no stray temporary


def test_training_curves_plot(tmp_path):
    from asr.training.plots import plot_training_curves

    log = tmp_path / "train.log"
    log.write_text(
        '{"epoch": 1, "train_loss": 3.0, "audio_seconds_per_second": 10.0}\n'
        '{"epoch": 2, "train_loss": 2.0, "valid_loss": 2.5, "valid_wer": 0.5, "valid_cer": 0.2,'
        ' "audio_seconds_per_second": 11.0}\n'
    )
    out = plot_training_curves(log, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log.write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match="train.log:2"):
        plot_training_curves(log, tmp_path / "bad.png")


def _lr_factors(steps_per_epoch, scales, warmup=3):
    from asr.training.config import OptimConfig
    from asr.training.schedule import make_scheduler

    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    cfg = OptimConfig(lr=1.0, warmup_steps=warmup, epochs=len(steps_per_epoch))
    factor = make_scheduler(optimizer, cfg, steps_per_epoch, scales).lr_lambdas[0]
    return [factor(step) for step in range(sum(steps_per_epoch))]


def test_schedule_in_epochs_equals_the_step_schedule_for_equal_epochs():
    """Warmup, then cosine over (step - warmup) / (total - warmup), as before epochs of
    changing length existed."""
    factors = _lr_factors([10] * 4, [1.0] * 4)
    for step in (0, 2, 3, 17, 39):
        progress = max(0.0, (step - 3) / 37)
        cosine = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
        expected = (step + 1) / 3 if step < 3 else cosine
        assert factors[step] == pytest.approx(expected)


def test_schedule_follows_epochs_when_batches_grow():
    """Epochs 1-2 of 40 small steps, epochs 3-4 of 10 big ones at twice the lr: the cosine
    is halfway at the start of epoch 3 and the big steps are scaled."""
    factors = _lr_factors([40, 40, 10, 10], [1.0, 1.0, 2.0, 2.0], warmup=0)
    assert factors[79] == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 1.975 / 4)))
    assert factors[80] == pytest.approx(2 * (0.05 + 0.95 * 0.5))  # epoch 2.0 of 4: halfway
    assert factors[85] == pytest.approx(2 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 2.5 / 4))))


def test_a_second_run_on_the_folder_is_refused_naming_the_first(corpus, tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(
            json.dumps({"pid": holder.pid, "host": _host(), "since": 0})
        )
        with pytest.raises(ConfigError, match=f"in use: `asr train` process {holder.pid}"):
            fit(_config(corpus, "optim.epochs=1"), tmp_path)
        assert not (tmp_path / "config.toml").exists()  # nothing of the second run written
    finally:
        holder.kill()
        holder.wait()
    fit(_config(corpus, "optim.epochs=1"), tmp_path)  # its process gone: the lock is stale
    assert (tmp_path / "model.pt").is_file() and not (tmp_path / ".lock").exists()


def _host() -> str:
    import socket

    return socket.gethostname()


def test_a_refused_resume_changes_nothing_and_a_new_lr_is_used(corpus, tmp_path):
    fit(_config(corpus, "optim.epochs=1"), tmp_path)
    before = (tmp_path / "config.toml").read_text()
    with pytest.raises(CheckpointError, match="weights do not fit"):
        fit(_config(corpus, "optim.epochs=2", "model.hidden_size=24"), tmp_path, resume=True)
    assert (tmp_path / "config.toml").read_text() == before
    tr = build_trainer(_config(corpus, "optim.epochs=2", "optim.lr=0.1"), tmp_path)
    resume_state(tr, tmp_path / "last.pt")
    factor = tr.scheduler.lr_lambdas[0](tr.scheduler.last_epoch)
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * factor)
    assert tr.scheduler.base_lrs == [0.1]


def test_transcripts_too_long_for_their_audio_are_named_and_none_fitting_is_an_error(
    corpus, tmp_path, caplog
):
    from asr.manifest import ManifestError, read_manifest, write_manifest

    utts = read_manifest(corpus)
    long = "a b " * 200  # far more symbols than a second or two gives frames
    mixed = [utts[0].__class__(**{**vars(utts[0]), "text": long}), *utts[1:6]]
    write_manifest(tmp_path / "mixed.jsonl", mixed)
    with caplog.at_level(logging.WARNING):
        tr = build_trainer(_config(tmp_path / "mixed.jsonl"), tmp_path / "exp")
    assert len(tr.train_loader.dataset) == 5
    assert "mixed.jsonl:1: transcript too long for its audio, left out" in caplog.text
    write_manifest(tmp_path / "none.jsonl", [mixed[0]])
    with pytest.raises(ManifestError, match="none.jsonl: no utterance's transcript fits"):
        fit(_config(tmp_path / "none.jsonl", "optim.epochs=1"), tmp_path / "exp_none")
