import dataclasses
import typing

import pytest

from asr.config import ConfigError, apply_overrides, from_dict, load_toml, to_toml
from asr.training.loop import ExperimentConfig


def test_toml_round_trip(tmp_path):
    cfg = apply_overrides(
        ExperimentConfig(), ["model.hidden_size=64", "data.train_manifest=x.jsonl"]
    )
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_toml(ExperimentConfig, path) == cfg


@pytest.mark.parametrize(
    ("override", "check"),
    [
        ("model.hidden_size=512", lambda c: c.model.hidden_size == 512),
        ("model.rnn_type=gru", lambda c: c.model.rnn_type == "gru"),
        ('model.rnn_type="gru"', lambda c: c.model.rnn_type == "gru"),
        ("optim.lr=0.002", lambda c: c.optim.lr == 0.002),
        ("optim.lr=1", lambda c: c.optim.lr == 1.0 and isinstance(c.optim.lr, float)),
    ],
)
def test_overrides(override, check):
    assert check(apply_overrides(ExperimentConfig(), [override]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hidden=3", "unknown key 'hidden'"),
        ("modle.hidden_size=3", "'modle' is not a section"),
        ("model.hidden_size=big", "expected int"),
        ("model.hidden_size=1.5", "expected int"),
        ("optim.lr=true", "expected float"),
        ("model.rnn_type=rnn", "rnn_type"),
        ("model.hidden_size", "expected key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ExperimentConfig(), [override])


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nhidden_size = 'wide'\n")
    with pytest.raises(ConfigError, match="bad.toml.model.hidden_size"):
        load_toml(ExperimentConfig, bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_toml(ExperimentConfig, tmp_path / "missing.toml")
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_toml(ExperimentConfig, bad)


def test_unknown_section():
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(ExperimentConfig, {"modell": {}})


def test_auto_precision_is_bf16_only_where_the_cpu_has_bf16_arithmetic(tmp_path, caplog):
    import torch

    from asr.device import cpu_has_bf16, resolve_precision

    plain, native = tmp_path / "plain", tmp_path / "native"
    plain.write_text("flags\t\t: fpu sse avx2 avx512f avx512bw avx512vl\n")  # bf16 emulated
    native.write_text("flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    assert not cpu_has_bf16(plain) and cpu_has_bf16(native)
    cpu = torch.device("cpu")
    expected = torch.bfloat16 if cpu_has_bf16() else torch.float32
    assert resolve_precision("auto", cpu) == expected
    with caplog.at_level("WARNING", logger="asr.device"):
        assert resolve_precision("bf16", cpu) == torch.bfloat16  # asked for: kept
    assert ("emulated" in caplog.text) == (not cpu_has_bf16())
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", cpu)


# Issue 31: every training setting is refused when the config is read, naming its key.
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('train.average_by="bogus"', "train.average_by must be one of"),
        ("train.average_last=-3", "train.average_last must be >= 0"),
        ("optim.epochs=100000000000000000000", "optim.epochs must be >= 1 and <= 10000"),
        ("model.hidden_size=100000000", "model.hidden_size must be >= 1 and <= 16384"),
        ("train.crf_lm_smoothing=1e308", "train.crf_lm_smoothing must be"),
        ("optim.lr=inf", "optim.lr must be"),
        ("optim.lr=-0.001", "optim.lr must be"),
        ("optim.final_lr_ratio=nan", "optim.final_lr_ratio"),
        ("train.seed=-1", "train.seed must be >= 0"),
        ("train.seed=4294967296", "train.seed must be"),
        ("train.aux_weight=1.5", "train.aux_weight must be"),
        ('train.precision="fp8"', "train.precision must be one of"),
        ('train.device="gpu"', "train.device 'gpu'"),
        ('train.loss="mmi"', "train.loss must be one of"),
        ("train.crf_lm_order=3", "train.crf_lm_order must be one of"),
        ('model.encoder="conformer"', "model.encoder must be one of"),
        ("augment.speeds=[0.0, 1.0]", "augment.speeds must be"),
        ("features.f_max=9000.0", "sample_rate / 2"),
    ],
)
def test_bad_training_settings_are_refused_by_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ExperimentConfig(), [override])


def _numeric_fields(section):
    hints = typing.get_type_hints(type(section))
    return [f.name for f in dataclasses.fields(section) if hints[f.name] in (int, float)]


SECTIONS = [f.name for f in dataclasses.fields(ExperimentConfig)]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("sign", [1, -1])
def test_every_number_has_bounds(section, sign):
    """No numeric setting of any section takes an absurd value: 10**15 (or 1e300 for a
    float), either sign, is refused with a message naming the key."""
    fields = _numeric_fields(getattr(ExperimentConfig(), section))
    assert fields
    for name in fields:
        hint = typing.get_type_hints(type(getattr(ExperimentConfig(), section)))[name]
        value = sign * (10**15 if hint is int else 1e300)
        with pytest.raises(ConfigError, match=rf"{section}\.{name}"):
            apply_overrides(ExperimentConfig(), [f"{section}.{name}={value!r}"])


def test_average_by_best_needs_a_validation_set():
    with pytest.raises(ConfigError, match="needs data.valid_manifest"):
        apply_overrides(ExperimentConfig(), ["train.average_last=3", 'train.average_by="best"'])
    best = ["train.average_last=3", 'train.average_by="best"', 'data.valid_manifest="v.jsonl"']
    assert apply_overrides(ExperimentConfig(), best).train.average_by == "best"


def test_a_bad_setting_stops_asr_train_before_anything_is_built(tmp_path, capsys):
    from asr.cli import main

    config = tmp_path / "c.toml"
    config.write_text('[data]\ntrain_manifest = "missing.jsonl"\n')
    exp = tmp_path / "exp"
    args = ["train", "--config", str(config), "--exp-dir", str(exp)]
    assert main([*args, "--set", 'train.average_by="bogus"']) == 2
    assert "train.average_by" in capsys.readouterr().err
    assert not exp.exists()  # refused before the folder, the features or the model
