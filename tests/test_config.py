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
