"""Streaming: the latency-controlled BiRNN step by step equals the whole utterance, the
feature and acoustic streams equal the runtime on the whole file (both runtimes, any block
size), endpoints split utterances, and a tone-corpus streaming model transcribes live
through the API, `asr transcribe --stream`, the WebSocket (Vosk protocol) and Wyoming: the
finals written (capital, final mark), the partials and every raw request spoken words."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.audio import load_audio
from asr.checkpoint import inference_payload, save_checkpoint
from asr.cli import main
from asr.decode import DecodingOptions
from asr.features import FeatureConfig, FeatureExtractor
from asr.frames import StreamWindow
from asr.inference.recognizer import load_model
from asr.inference.runtime_torch import TorchRunner
from asr.inference.stream import (
    AcousticStream,
    FeatureStream,
    SegmentDecoder,
    Stream,
    StreamConfig,
    StreamError,
)
from asr.logmel import RunningNorm
from asr.manifest import read_manifest
from asr.model import AcousticModel, ModelConfig
from asr.punctuation import default_punctuator
from asr.text import normalize_text
from tests.helpers import VOCAB, assert_raw, assert_written, train_tone_model


def _lc_config(**changes) -> ModelConfig:
    base = dict(num_layers=2, hidden_size=16, conv_channels=4, subsampling=3)
    base |= dict(encoder="lc_birnn", chunk_frames=5, right_frames=3)
    return ModelConfig(**(base | changes))


@pytest.mark.parametrize("subsampling", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_steps_equal_the_whole_utterance(subsampling, rnn_type):
    torch.manual_seed(0)
    model = AcousticModel(_lc_config(subsampling=subsampling, rnn_type=rnn_type), 20, 7).eval()
    feats, lens = torch.randn(2, 97, 20), torch.tensor([97, 61])
    feats[1, 61:] = 0  # the extractor's padding
    with torch.no_grad():
        whole, out_lens = model(feats, lens)
    window = model.stream_window
    for b in range(2):
        steps = _step_through(model, window, feats[b, : int(lens[b])], int(out_lens[b]))
        torch.testing.assert_close(steps, whole[b, : int(out_lens[b])], atol=1e-5, rtol=0)


def _step_through(model, window: StreamWindow, feats: torch.Tensor, out_frames: int):
    """`stream_step` over (T, F) features window by window, as AcousticStream does."""
    states, rows, step = model.initial_states(1), [], 0
    while step * window.chunk < out_frames:
        start = window.start(step)
        chunk = torch.zeros(1, window.frames, feats.shape[1])
        lo, hi = max(start, 0), min(start + window.frames, len(feats))
        chunk[0, lo - start : hi - start] = feats[lo:hi]
        first, last = torch.tensor([max(0, -start)]), torch.tensor([len(feats) - start])
        with torch.no_grad():
            log_probs, states = model.stream_step(chunk, first, last, states)
        rows.append(log_probs[0])
        step += 1
    return torch.cat(rows)[:out_frames]


def test_a_chunk_sees_no_further_than_its_look_ahead():
    torch.manual_seed(0)
    model = AcousticModel(_lc_config(), 20, 7).eval()
    feats = torch.randn(1, 90, 20)
    changed = feats.clone()
    window = model.stream_window
    # Change everything after the first chunk's window: its rows must not move.
    changed[0, window.start(0) + window.frames :] += 1.0
    with torch.no_grad():
        a, _ = model(feats, torch.tensor([90]))
        b, _ = model(changed, torch.tensor([90]))
    torch.testing.assert_close(a[0, : window.chunk], b[0, : window.chunk])
    assert not torch.allclose(a[0, window.chunk :], b[0, window.chunk :])


def test_running_normalization_is_causal_and_equal_in_torch_and_numpy():
    rng = np.random.default_rng(0)
    feats = rng.normal(-4, 2, (2, 50, 8)).astype(np.float32)
    mean, std = rng.normal(-4, 1, 8).astype(np.float32), rng.uniform(1, 2, 8).astype(np.float32)
    batch = RunningNorm(mean, std).batch(feats)
    pieces = RunningNorm(mean, std)
    streamed = np.concatenate([pieces(feats[0, i : i + 7]) for i in range(0, 50, 7)])
    np.testing.assert_allclose(streamed, batch[0], atol=1e-5)
    extractor = FeatureExtractor(FeatureConfig(n_mels=8, normalization="running"))
    extractor.set_global_stats(torch.from_numpy(mean), torch.from_numpy(std))
    torch_out, _ = extractor.normalize(torch.from_numpy(feats), torch.tensor([50, 50]))
    np.testing.assert_allclose(torch_out.numpy(), batch, atol=1e-4)
    later = feats.copy()
    later[:, 30:] += 5.0  # the future moves no earlier frame
    np.testing.assert_array_equal(RunningNorm(mean, std).batch(later)[:, :30], batch[:, :30])


def _runner(normalization: str = "running", **changes) -> TorchRunner:
    torch.manual_seed(0)
    extractor = FeatureExtractor(FeatureConfig(normalization=normalization))
    extractor.set_global_stats(torch.randn(80) * 0.5 - 5, torch.rand(80) + 0.5)
    model = AcousticModel(_lc_config(**changes), 80, len(VOCAB))
    return TorchRunner(extractor, model, VOCAB)


@pytest.mark.parametrize("block", [160, 777, 4000, 48000])
def test_feature_and_acoustic_streams_equal_the_whole_file(block):
    runner = _runner()
    wave = np.random.default_rng(0).normal(0, 0.1, 16000 * 3 + 123).astype(np.float32)
    whole, _ = runner.log_probs([wave])
    features, acoustic = FeatureStream(runner.stream_features), AcousticStream(runner)
    rows = [
        acoustic.accept(features.accept(wave[i : i + block])) for i in range(0, len(wave), block)
    ]
    rows += [acoustic.accept(features.finish()), acoustic.finish()]
    np.testing.assert_allclose(np.concatenate(rows), whole[0], atol=1e-4)


def test_models_that_cannot_stream_say_why():
    with pytest.raises(StreamError, match="normalizes each utterance"):
        FeatureStream(_runner("utterance").stream_features)
    offline = TorchRunner(
        FeatureExtractor(FeatureConfig()), AcousticModel(ModelConfig(hidden_size=8), 80, 29), VOCAB
    )
    with pytest.raises(StreamError, match="cannot stream"):
        AcousticStream(offline)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("chunk_frames", 0, "needs one > 0"),
        ("right_frames", -1, ">= 0"),
        ("chunk_jitter", 5, "below chunk_frames"),
    ],
)
def test_bad_streaming_settings_are_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        _lc_config(**{field: value})
    with pytest.raises(ValueError, match="is for encoder 'lc_birnn'"):
        ModelConfig(chunk_frames=4)


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf")])
def test_bad_stream_config_is_refused(value):
    with pytest.raises(StreamError, match="endpoint_seconds"):
        StreamConfig(endpoint_seconds=value)


def _spoken(text: str, frames_per_token: int = 3, blank_before: int = 0) -> np.ndarray:
    """(T, V) log-probs saying `text` (greedy), after `blank_before` blank frames."""
    ids = [VOCAB.blank_id] * blank_before
    for token in VOCAB.encode(text):
        ids += [token] + [VOCAB.blank_id] * (frames_per_token - 1)
    rows = np.full((len(ids), len(VOCAB)), -20.0, np.float32)
    rows[np.arange(len(ids)), ids] = 0.0
    return rows


def test_an_endpoint_ends_an_utterance_and_partials_come_before():
    decoder = SegmentDecoder(VOCAB, DecodingOptions(), 0.04, StreamConfig(endpoint_seconds=0.4))
    rows = np.concatenate([_spoken("hi there"), _spoken("", blank_before=10), _spoken("you")])
    events = []
    for i in range(0, len(rows), 4):
        events += decoder.accept(rows[i : i + 4])
    events += decoder.finish()
    finals = [e for e in events if e.kind == "final"]
    assert [e.text for e in finals] == ["hi there", "you"]
    assert [w.word for w in finals[0].words] == ["hi", "there"]
    assert finals[1].start >= finals[0].end - 1e-9  # the second starts where the first ended
    partials = [e.text for e in events if e.kind == "partial"]
    assert "hi" in partials and partials.index("hi") < partials.index("hi there")
    assert events.index(finals[0]) < len(events) - 1


def test_a_long_utterance_is_ended_at_its_maximum():
    cfg = StreamConfig(max_segment_seconds=0.4)  # 10 frames of 0.04 s
    decoder = SegmentDecoder(VOCAB, DecodingOptions(), 0.04, cfg)
    events = decoder.accept(_spoken("abcdefgh", frames_per_token=2)) + decoder.finish()
    finals = [e.text for e in events if e.kind == "final"]
    assert len(finals) == 2 and "".join(finals) == "abcdefgh"


def test_a_punctuator_writes_the_finals_and_not_the_partials():
    """Stream's finals go through its punctuator (their spoken words kept in raw_text and
    words); partials, and every event of a stream without one, stay spoken words."""
    rows = np.concatenate([_spoken("hi there"), _spoken("", blank_before=40), _spoken("you")])
    for punctuator in (default_punctuator(), None):
        stream = Stream(_runner(), DecodingOptions(), punctuator=punctuator)
        stream.decoder = SegmentDecoder(VOCAB, DecodingOptions(), 0.04)
        stream.acoustic.steps = lambda _feats: iter([rows])  # the rows, whatever the audio
        events = stream.accept(np.zeros(1600, np.float32))
        finals = [e for e in events if e.kind == "final"]
        assert [e.raw_text for e in finals] == ["hi there"]
        assert [w.word for w in finals[0].words] == ["hi", "there"]
        if punctuator is None:
            assert finals[0].text == "hi there"
        else:
            assert_written(finals[0].text, "hi there")
        for partial in (e for e in events if e.kind == "partial"):
            assert partial.text == partial.raw_text and partial.text.islower()


def test_the_stream_refuses_bad_audio_by_name():
    stream = Stream(_runner(), DecodingOptions())
    with pytest.raises(StreamError, match="whole samples"):
        stream.accept_pcm16(b"\x00\x01\x02")
    with pytest.raises(StreamError, match="finite"):
        stream.accept(np.array([0.0, np.nan], np.float32))
    stream.finish()
    with pytest.raises(StreamError, match="has finished"):
        stream.accept(np.zeros(10, np.float32))


# --- a tone-corpus streaming model, end to end -----------------------------------------


@pytest.fixture(scope="module")
def tone_model(tmp_path_factory):
    """The quickstart recipe on the tone corpus as a latency-controlled GRU, exported with
    its ONNX step graph: (model folder, manifest)."""
    root = tmp_path_factory.mktemp("stream")
    streaming = ['model.encoder="lc_birnn"', "model.chunk_frames=10", "model.right_frames=5"]
    exp, manifest = train_tone_model(root, *streaming, 'features.normalization="running"')
    assert main(["export", str(exp), "--out", str(root / "model"), "--onnx"]) == 0
    return root / "model", manifest


def _stream_text(recognizer, wave: np.ndarray, block: int) -> tuple[list, list[str]]:
    """(the final events that said something, the partials' texts) of `wave` streamed."""
    stream = recognizer.stream()
    events = []
    for i in range(0, len(wave), block):
        events += stream.accept(wave[i : i + block])
    events += stream.finish()
    finals = [e for e in events if e.kind == "final" and e.text]
    return finals, [e.text for e in events if e.kind == "partial"]


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_the_tone_model_streams_what_it_transcribes(tone_model, runtime):
    folder, manifest = tone_model
    recognizer = load_model(folder, "cpu", runtime)
    for utt in read_manifest(manifest)[:4]:
        offline = recognizer.transcribe(utt.audio_filepath)[0]
        assert offline.raw_text == utt.text
        assert_written(offline.text, utt.text)
        wave = load_audio(utt.audio_filepath)
        finals, partials = _stream_text(recognizer, wave, 1600)
        assert " ".join(e.raw_text for e in finals) == utt.text
        for final in finals:
            assert_written(final.text, final.raw_text)
        assert partials and utt.text.startswith(partials[0])


@pytest.mark.slow
def test_the_onnx_step_equals_the_torch_step(tone_model):
    folder, _ = tone_model
    torch_runner = load_model(folder, "cpu", "torch").runner
    onnx_runner = load_model(folder, "cpu", "onnx").runner
    window = onnx_runner.stream_window
    assert window == torch_runner.stream_window
    rng = np.random.default_rng(0)
    states = rng.normal(0, 0.5, torch_runner.initial_states().shape).astype(np.float32)
    feats = rng.normal(0, 1, (1, window.frames, 80)).astype(np.float32)
    for first, last in [(window.margin, window.frames), (0, window.frames), (0, window.frames - 7)]:
        a, sa = torch_runner.stream_step(feats, first, last, states)
        b, sb = onnx_runner.stream_step(feats, first, last, states)
        np.testing.assert_allclose(a, b, atol=1e-4)
        np.testing.assert_allclose(sa, sb, atol=1e-4)


@pytest.mark.slow
def test_a_pause_between_two_utterances_gives_two_results(tone_model):
    folder, manifest = tone_model
    recognizer = load_model(folder, "cpu", "onnx")
    first, second = read_manifest(manifest)[:2]
    waves = [load_audio(u.audio_filepath) for u in (first, second)]
    pause = np.random.default_rng(0).normal(0, 0.003, 16000).astype(np.float32)
    stream = recognizer.stream()
    audio = np.concatenate([waves[0], pause, waves[1]])
    events = [e for i in range(0, len(audio), 3200) for e in stream.accept(audio[i : i + 3200])]
    finals = [e for e in [*events, *stream.finish()] if e.kind == "final"]
    # The first result comes during the pause, before the second utterance has been sent
    # (the tiny model, trained on single utterances, mishears part of the second one).
    assert len(finals) == 2 and finals[0].raw_text == first.text
    assert_written(finals[0].text, first.text)
    pause_start = len(waves[0]) / 16000
    assert pause_start < finals[0].end < pause_start + 1.0 <= finals[1].end
    assert set(finals[1].raw_text.split()) & set(second.text.split())  # some of its words


@pytest.mark.slow
def test_transcribe_stream_cli(tone_model, capsys, tmp_path):
    folder, manifest = tone_model
    utterances = read_manifest(manifest)[:2]
    capsys.readouterr()
    paths = [u.audio_filepath for u in utterances]
    assert main(["transcribe", *paths, "--model", str(folder), "--stream", "--fast"]) == 0
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if not line.startswith("==")]
    for line, utt in zip(lines, utterances, strict=True):
        assert_written(line.split("] ", 1)[1], utt.text)
    partials = out.err.splitlines()  # one line each off a terminal, the first file first
    assert partials[0] and utterances[0].text.startswith(partials[0])
    argv = ["transcribe", *paths, "--model", str(folder), "--stream", "--fast", "--raw"]
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("==")]
    assert [line.split("] ", 1)[1] for line in lines] == [u.text for u in utterances]
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio")
    args = ["transcribe", str(junk), paths[0], "--model", str(folder), "--stream", "--fast"]
    assert main(args) == 1  # the bad file is named; the good one still gets its result
    out = capsys.readouterr()
    assert "junk.wav" in out.err
    assert_written(out.out.strip().split("] ", 1)[1], utterances[0].text)


def test_a_model_that_cannot_stream_is_refused_by_the_cli(tmp_path, capsys):
    from tests.helpers import tiny_checkpoint

    tiny_checkpoint(tmp_path, ModelConfig(num_layers=1, hidden_size=8, conv_channels=4))
    wave = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(wave, np.zeros(16000, np.float32), 16000)
    code = main(["transcribe", str(wave), "--model", str(tmp_path), "--stream", "--fast"])
    assert code != 0 and "cannot stream" in capsys.readouterr().err


# --- the server's protocols -------------------------------------------------------------

LOCAL = "http://127.0.0.1:8000"
WS = "ws://127.0.0.1:8000/v1/stream"  # TestClient sends this Host (the server checks it)


def _pcm16(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def stream_server(tone_model):
    from asr.serve import ServeConfig, Server

    config = ServeConfig(max_streams=2, stream_idle_timeout=2.0, max_stream_seconds=20.0)
    return Server(load_model(tone_model[0], "cpu", "onnx"), config)


@pytest.fixture(scope="module")
def client(stream_server, tone_model):
    from starlette.testclient import TestClient

    from asr.serve import server_app

    with TestClient(server_app(stream_server), base_url=LOCAL) as test_client:
        yield test_client, tone_model[1]


def _vosk_exchange(test_client, wave: np.ndarray, config: dict) -> tuple[list[dict], dict]:
    """(the replies to each audio message, the reply to eof) of `wave` sent in 0.2 s."""
    with test_client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"config": config}))
        replies = []
        for i in range(0, len(wave), 3200):
            ws.send_bytes(_pcm16(wave[i : i + 3200]))
            replies.append(ws.receive_json())
        ws.send_text(json.dumps({"eof": 1}))
        return replies, ws.receive_json()


@pytest.mark.slow
def test_the_vosk_protocol_streams_partials_and_results(client):
    """Results carry the written text and the timed spoken words; partials spoken words;
    "raw": true in the config gives the spoken words in the results too."""
    test_client, manifest = client
    utt = read_manifest(manifest)[0]
    wave = load_audio(utt.audio_filepath)
    replies, final = _vosk_exchange(test_client, wave, {"sample_rate": 16000, "words": True})
    assert len(replies) == -(-len(wave) // 3200)  # one answer per audio message
    partials = [r["partial"] for r in replies if r.get("partial")]
    assert partials and utt.text.startswith(partials[0].split(" ")[0])
    for partial in partials:
        assert_raw(partial)
    texts = [r["text"] for r in replies if "text" in r] + [final["text"]]
    for text in filter(None, texts):
        assert text[:1].isupper() and text.endswith((".", "?", "!")), text
    words = [w for r in [*replies, final] for w in r.get("result", [])]
    assert [w["word"] for w in words] == utt.text.split()
    assert_written(" ".join(t for t in texts if t), utt.text)
    assert all({"word", "start", "end", "conf"} <= set(w) for w in words)
    replies, final = _vosk_exchange(test_client, wave, {"raw": True})
    texts = [r["text"] for r in replies if "text" in r] + [final["text"]]
    assert " ".join(t for t in texts if t) == utt.text


@pytest.mark.slow
def test_another_sample_rate_is_resampled(client):
    test_client, manifest = client
    import soundfile as sf

    from asr.audio import resample

    utt = read_manifest(manifest)[1]
    wave, rate = sf.read(utt.audio_filepath, dtype="float32")
    wave8k = resample(wave, rate, 8000)
    with test_client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"config": {"sample_rate": 8000}}))
        for i in range(0, len(wave8k), 4000):
            ws.send_bytes(_pcm16(wave8k[i : i + 4000]))
            ws.receive_json()
        ws.send_text('{"eof" : 1}')
        assert "text" in ws.receive_json()


@pytest.mark.slow
@pytest.mark.parametrize(
    "messages, code, reason",
    [
        (['{"config": {"sample_rate": 1234}}'], 1007, "outside 8000-96000"),
        (['{"config": {"sample_rate": "fast"}}'], 1007, "must be an integer"),
        (['{"config": {"sample_rate": NaN}}'], 1007, "must be an integer"),
        (['{"config": {"sample_rate": 1e999}}'], 1007, "must be an integer"),
        (['{"config": [16000]}'], 1007, "config must be an object"),
        (["[1, 2]"], 1007, "a JSON object"),
        (["not json"], 1007, "not valid JSON"),
        (['{"hello": 1}'], 1007, "unknown message"),
        ([b"\x00\x01\x02"], 1007, "whole samples"),
        ([b"\x00\x00" * 1000, '{"config": {"sample_rate": 16000}}'], 1008, "before the audio"),
        (['{"config": {"hotwords": ["mat"]}}'], 1008, "lexicon beam search"),  # greedy here
        (['{"config": {"raw": "yes"}}'], 1007, "raw must be true or false"),
    ],
)
def test_bad_messages_get_a_close_code_and_reason(client, messages, code, reason):
    from starlette.websockets import WebSocketDisconnect

    test_client, _ = client
    with test_client.websocket_connect(WS) as ws:
        for message in messages:
            ws.send_bytes(message) if isinstance(message, bytes) else ws.send_text(message)
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
    assert closed.value.code == code and reason in closed.value.reason


def _without_last_word(tone_model, folder) -> tuple:
    """(the tone model searching a lexicon without its first utterance's last word, that
    utterance, the search's options): only hotwords can bring the word back."""
    from asr.corpora.tones import _WORDS
    from asr.inference.lm import write_lexicon

    model, manifest = tone_model
    utt = read_manifest(manifest)[0]
    missing = utt.text.split()[-1]
    write_lexicon([w for w in _WORDS if w != missing], folder / "lexicon.txt")
    search = {"decoder": "beam", "lexicon_path": str(folder / "lexicon.txt")}
    return load_model(model, "cpu", "onnx", **search), utt, search


@pytest.mark.slow
def test_a_stream_takes_hotwords_in_its_config(tone_model, tmp_path):
    """A lexicon without the utterance's last word: only the config's hotwords bring it."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from asr.serve import ServeConfig, create_app

    folder = tone_model[0]
    recognizer, utt, search = _without_last_word(tone_model, tmp_path)
    missing = utt.text.split()[-1]
    wave = load_audio(utt.audio_filepath)

    def said(ws, config: dict) -> str:
        """The spoken words (raw) of the utterance streamed with `config`."""
        ws.send_text(json.dumps({"config": {"raw": True, **config}}))
        texts = []
        for i in range(0, len(wave), 3200):
            ws.send_bytes(_pcm16(wave[i : i + 3200]))
            texts.append(ws.receive_json().get("text"))
        ws.send_text(json.dumps({"eof": 1}))
        texts.append(ws.receive_json()["text"])
        return " ".join(t for t in texts if t)

    def refusal(ws, config: dict) -> tuple[int, str]:
        ws.send_text(json.dumps({"config": config}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        return closed.value.code, closed.value.reason

    config = ServeConfig(max_hotwords=1)
    with TestClient(create_app(recognizer, config), base_url=LOCAL) as client:
        with client.websocket_connect(WS) as ws:
            assert missing not in said(ws, {}).split()
        with client.websocket_connect(WS) as ws:
            assert said(ws, {"hotwords": [f"{missing}:4"]}) == utt.text  # (a tiny model:
        with client.websocket_connect(WS) as ws:  # boost 8 makes "is it" "it it")
            assert said(ws, {"hotwords": f"{missing}:2,\n"}) == utt.text  # a string
        with client.websocket_connect(WS) as ws:  # Vosk's grammar: boosted, as hotwords
            assert said(ws, {"phrase_list": [utt.text, "[unk]"]}) == utt.text
        for bad, code, reason in [
            ({"hotwords": [f"{missing}:0"]}, 1007, "config hotwords entry 1: boost '0'"),
            ({"hotwords": [7]}, 1007, "a list of strings or a string"),
            ({"hotwords": f"{missing}, {utt.text.split()[0]}"}, 1008, "2 hotwords; at most 1"),
            ({"hotwords": "x" * 20_001}, 1008, "over 20000 characters"),
            ({"hotwords": ["\u2605" * 80]}, 1007, "config hotwords entry 1"),  # > 123 bytes
        ]:
            with client.websocket_connect(WS) as ws:
                closed_with, why = refusal(ws, bad)
            assert closed_with == code and reason in why, (bad, why)
    served = load_model(folder, "cpu", "onnx", **search, hotwords=[f"{missing}:4"])
    with (
        TestClient(create_app(served, config), base_url=LOCAL) as client,
        client.websocket_connect(WS) as ws,  # the server's own list, none in the config
    ):
        assert said(ws, {}) == utt.text


@pytest.mark.slow
def test_streams_are_bounded(client):
    from starlette.websockets import WebSocketDisconnect

    test_client, _ = client
    with test_client.websocket_connect(WS) as one:  # idle: closed after 2 s
        with pytest.raises(WebSocketDisconnect) as closed:
            one.receive_json()
        assert closed.value.code == 1008 and "no audio" in closed.value.reason
    with test_client.websocket_connect(WS) as ws:  # 20 s of audio at most
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(30):
                ws.send_bytes(b"\x00\x00" * 16000)
                ws.receive_json()
        assert closed.value.code == 1008 and "20 s of audio" in closed.value.reason
    with (
        test_client.websocket_connect(WS),
        test_client.websocket_connect(WS),
        test_client.websocket_connect(WS) as third,
    ):  # max_streams=2
        with pytest.raises(WebSocketDisconnect) as closed:
            third.receive_json()
        assert closed.value.code == 1013 and "try again later" in closed.value.reason


@pytest.mark.slow
def test_another_origin_cannot_open_a_stream(client):
    from starlette.websockets import WebSocketDisconnect

    test_client, _ = client
    with pytest.raises(WebSocketDisconnect) as refused:
        headers = {"origin": "http://evil.example"}
        with test_client.websocket_connect(WS, headers=headers):
            pass
    assert refused.value.code == 1008
    with test_client.websocket_connect(WS, headers={"origin": LOCAL}) as ws:
        ws.send_text('{"eof": 1}')
        assert ws.receive_json() == {"text": ""}


@pytest.mark.slow
def test_wyoming_describe_and_transcribe(tone_model):
    """Home Assistant's side of the protocol, from the `wyoming` package itself."""
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    from asr.serve import ServeConfig, Server
    from asr.serve.wyoming import wyoming_server

    folder, manifest = tone_model
    recognizer = load_model(folder, "cpu", "onnx")
    utt = read_manifest(manifest)[2]
    pcm = _pcm16(load_audio(utt.audio_filepath))

    async def transcribe(client, raw: bool | None) -> str:
        request = Transcribe(language="en").event()
        if raw is not None:  # the wyoming package has no field for it: the event's data
            request.data["raw"] = raw
        await client.write_event(request)
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for i in range(0, len(pcm), 6400):
            chunk = AudioChunk(rate=16000, width=2, channels=1, audio=pcm[i : i + 6400])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        return Transcript.from_event(await client.read_event()).text

    async def exchange() -> tuple:
        config = ServeConfig(max_streams=2, stream_idle_timeout=5.0, max_stream_seconds=60.0)
        server = await wyoming_server(Server(recognizer, config), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await client.read_event())
            texts = [await transcribe(client, raw) for raw in (None, True, False)]
            await client.write_event(AudioStart(rate=16000, width=4, channels=1).event())
            error = await client.read_event()
        return info, texts, error

    info, (written, raw, asked_written), error = asyncio.run(exchange())
    assert info.asr and info.asr[0].models[0].languages == ["en"]
    assert_written(written, utt.text)
    assert raw == utt.text and asked_written == written
    assert error.type == "error" and "16-bit mono" in error.data["text"]


def test_a_checkpoint_of_a_streaming_model_loads_and_streams(tmp_path):
    torch.manual_seed(0)
    cfg = _lc_config()
    model = AcousticModel(cfg, 80, len(VOCAB))
    config = {"features": asdict(FeatureConfig(normalization="running")), "model": asdict(cfg)}
    mean, std = torch.randn(80) - 5.0, torch.rand(80) + 1.0
    save_checkpoint(
        tmp_path / "model.pt",
        inference_payload(config, VOCAB.to_list(), mean, std, model.state_dict()),
    )
    recognizer = load_model(tmp_path, "cpu", "torch")
    stream = recognizer.stream()
    events = stream.accept(np.zeros(16000, np.float32)) + stream.finish()
    assert events[-1].kind == "final"


@pytest.mark.slow
def test_a_client_that_goes_away_frees_its_stream(client, stream_server):
    test_client, manifest = client
    slots = stream_server.stream_slots
    wave = load_audio(read_manifest(manifest)[0].audio_filepath)
    for _ in range(3):  # more than max_streams (2) times: each one's slot came back
        with test_client.websocket_connect(WS) as ws:
            ws.send_bytes(_pcm16(wave[:8000]))
            ws.receive_json()
        # left without eof: the server's handler ends on the disconnect
    deadline = time.monotonic() + 5
    while slots.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slots.active == 0


def test_a_stream_holds_no_more_audio_than_a_step_needs():
    runner = _runner()
    stream = Stream(runner, DecodingOptions(), StreamConfig(max_segment_seconds=2.0))
    window, block = runner.stream_window, 1600
    rng = np.random.default_rng(0)
    for _ in range(300):  # 30 s in 0.1 s blocks
        stream.accept(rng.normal(0, 0.1, block).astype(np.float32))
        # features: less than one STFT frame's samples plus a block; frames: one window
        # plus a block's frames; log-probs: the utterance under way (<= 2 s here)
        assert len(stream.features.buffer) < 400 + block
        assert len(stream.acoustic.frames) <= window.frames + block // 160 + 1
        rows = sum(len(r) for r in stream.decoder.rows)
        assert rows <= 2.0 / runner.frame_seconds + window.chunk


# --- idle clients, untrusted JSON, Wyoming's manners (issue 35), with an untrained model ---


@pytest.fixture(scope="module")
def random_stream_model(tmp_path_factory):
    """A streaming model folder with random weights: it streams anything, quickly."""
    folder = tmp_path_factory.mktemp("random_stream")
    torch.manual_seed(0)
    cfg = _lc_config()
    model = AcousticModel(cfg, 80, len(VOCAB))
    config = {"features": asdict(FeatureConfig(normalization="running")), "model": asdict(cfg)}
    payload = inference_payload(
        config, VOCAB.to_list(), torch.zeros(80), torch.ones(80), model.state_dict()
    )
    save_checkpoint(folder / "model.pt", payload)
    return load_model(folder, "cpu", "torch")


def _serve_config(**limits):
    from asr.serve import ServeConfig

    return ServeConfig(**{"max_streams": 1, "stream_idle_timeout": 1.0, **limits})


def _vosk_closed(recognizer, messages, pause: float = 0.0, seconds: float = 5.0):
    """The WebSocketDisconnect that closes a Vosk stream sent `messages` (each answered;
    repeated, `pause` apart, for at most `seconds`), and the time it took; None if it
    stayed open."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from asr.serve import Server, server_app

    server = Server(recognizer, _serve_config())
    with (
        TestClient(server_app(server), base_url=LOCAL) as test_client,
        test_client.websocket_connect(WS) as ws,
    ):
        start = time.monotonic()
        try:
            while time.monotonic() - start < seconds:
                for message in messages:
                    send = ws.send_bytes if isinstance(message, bytes) else ws.send_text
                    send(message)
                    ws.receive_json()  # audio is answered; a bad text is closed
                time.sleep(pause)
        except WebSocketDisconnect as closed:
            return closed, time.monotonic() - start
    return None, seconds


def test_empty_frames_do_not_keep_a_vosk_stream(random_stream_model):
    """A slot is earned by audio: 0-byte frames every 0.1 s used to reset the idle timer
    forever; now the stream is closed once it has waited 1 s in all without audio."""
    closed, took = _vosk_closed(random_stream_model, [b""], pause=0.1)
    assert closed is not None, "empty frames kept the stream open"
    assert closed.code == 1008 and "no audio" in closed.reason
    assert took < 3.0


def test_audio_at_real_time_keeps_a_vosk_stream(random_stream_model):
    closed, _ = _vosk_closed(random_stream_model, [b"\x00\x00" * 1600], pause=0.1, seconds=2.5)
    assert closed is None


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"config": {"sample_rate": 1' + "0" * 400 + "}}", "digits"),
        ("[" * 1000 + "]" * 1000, "nested"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "a JSON object"),
    ],
)
def test_a_vosk_message_is_read_by_the_one_json_reader(random_stream_model, text, words):
    closed, _ = _vosk_closed(random_stream_model, [text])
    assert closed is not None and closed.code == 1007
    assert words in closed.reason and "text message" in closed.reason


def _wyoming_exchange(recognizer, client, **limits):
    """`client(reader, writer)`'s result against a Wyoming server on 127.0.0.1."""
    from asr.serve import Server
    from asr.serve.wyoming import wyoming_server

    async def run():
        server = await wyoming_server(Server(recognizer, _serve_config(**limits)), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(client(reader, writer), 20)
            finally:
                writer.close()

    return asyncio.run(run())


def _event(kind: str, data: dict | None = None, payload: bytes = b"") -> bytes:
    header = {"type": kind, "data": data or {}}
    if payload:
        header["payload_length"] = len(payload)
    return (json.dumps(header) + "\n").encode() + payload


async def _next_event(reader) -> dict | None:
    line = await reader.readline()
    return json.loads(line) if line else None


def test_pings_do_not_keep_a_wyoming_stream(random_stream_model):
    async def client(reader, writer):
        start = time.monotonic()
        while time.monotonic() - start < 5:
            writer.write(_event("ping"))
            await writer.drain()
            try:
                while (event := await asyncio.wait_for(_next_event(reader), 0.1))["type"] == "pong":
                    pass  # answered, but a ping earns no time
                return event, time.monotonic() - start
            except TimeoutError:
                pass
        return None, 5.0

    event, took = _wyoming_exchange(random_stream_model, client)
    assert event and event["type"] == "error" and "no audio" in event["data"]["text"]
    assert took < 3.0


@pytest.mark.parametrize(
    "data, words",
    [
        ({"language": "de"}, "language 'de' is not supported"),
        ({"name": "whisper-large", "language": "en"}, "model 'whisper-large' is not served"),
    ],
)
def test_a_wyoming_transcribe_the_server_cannot_do_is_an_error(random_stream_model, data, words):
    async def client(reader, writer):
        writer.write(_event("transcribe", data))
        return await _next_event(reader)

    event = _wyoming_exchange(random_stream_model, client)
    assert event and event["type"] == "error" and words in event["data"]["text"]
    assert event["data"]["code"] == "1007"


def test_a_wyoming_transcribe_of_the_listed_model_is_answered(random_stream_model):
    async def client(reader, writer):
        writer.write(_event("describe"))
        (model,) = (await _next_event(reader))["data"]["asr"][0]["models"]
        writer.write(_event("transcribe", {"name": model["name"], "language": "en-US"}))
        writer.write(_event("audio-start", {"rate": 16000, "width": 2, "channels": 1}))
        writer.write(_event("audio-stop"))
        return await _next_event(reader)

    assert _wyoming_exchange(random_stream_model, client)["type"] == "transcript"


def test_a_wyoming_header_is_read_by_the_one_json_reader(random_stream_model):
    async def client(reader, writer):
        writer.write(b'{"type": "describe", "data": {"n": 1' + b"0" * 400 + b"}}\n")
        return await _next_event(reader)

    event = _wyoming_exchange(random_stream_model, client)
    assert event["type"] == "error" and event["data"]["code"] == "1007"
    assert "event header" in event["data"]["text"] and "digits" in event["data"]["text"]


def test_a_wyoming_client_still_writing_reads_why_it_is_closed(random_stream_model):
    """audio-start with width 4, then 4 MB of audio written without reading: the client's
    writes all land (no reset) and it reads the error that says why."""

    async def client(reader, writer):
        writer.write(_event("audio-start", {"rate": 16000, "width": 4, "channels": 1}))
        chunk = _event("audio-chunk", {"rate": 16000, "width": 4, "channels": 1}, bytes(64000))
        for _ in range(64):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.005)
        return await _next_event(reader)

    event = _wyoming_exchange(random_stream_model, client)
    assert event["type"] == "error" and "16-bit mono" in event["data"]["text"]


# --- a Vosk client, as alphacep/vosk-server's websocket/test.py and test_srt.py speak ----


@pytest.fixture(scope="module")
def vosk_url(tone_model):
    """A real server (uvicorn on a socket) of the tone model with a beam search, so that
    finals have an n-best: its Vosk WebSocket URL."""
    from asr.corpora.tones import _WORDS
    from asr.inference.lm import write_lexicon
    from asr.serve import ServeConfig, create_app
    from tests.browser import serve_in_thread

    folder, _ = tone_model
    lexicon = folder.parent / "vosk_lexicon.txt"
    write_lexicon(list(_WORDS), lexicon)
    recognizer = load_model(folder, "cpu", "onnx", decoder="beam", lexicon_path=str(lexicon))
    for url in serve_in_thread(create_app(recognizer, ServeConfig())):
        yield url.replace("http", "ws") + "/v1/stream"


def _vosk_client(url: str, config: dict, messages: list[bytes]) -> tuple[list[dict], str]:
    """What a Vosk client reads: one answer after each message it sends, then one after
    eof; (the answers, how the server then ended the connection)."""
    from websockets.exceptions import ConnectionClosedOK
    from websockets.sync.client import connect

    with connect(url) as ws:
        ws.send(json.dumps({"config": config}))
        answers = []
        for message in messages:
            ws.send(message)
            answers.append(json.loads(ws.recv(timeout=30)))
        ws.send('{"eof" : 1}')
        answers.append(json.loads(ws.recv(timeout=30)))
        try:
            extra = ws.recv(timeout=10)
            return answers, f"a further message {extra!r}"
        except ConnectionClosedOK:
            return answers, "closed"


def _two_utterances(manifest) -> tuple[np.ndarray, float, list]:
    """Two tone utterances with a 1 s pause between them and after: (audio, the pause's
    start in seconds, the utterances). (The third and fourth: the tiny model, trained on
    single utterances, hears some of the second one after the first.)"""
    utterances = read_manifest(manifest)[2:4]
    waves = [load_audio(u.audio_filepath) for u in utterances]
    pause = np.random.default_rng(0).normal(0, 0.003, 16000).astype(np.float32)
    return np.concatenate([waves[0], pause, waves[1], pause]), len(waves[0]) / 16000, utterances


@pytest.mark.slow
def test_a_vosk_client_reads_one_answer_per_message(vosk_url, tone_model):
    """Two utterances that end in one message are one final; eof gets one answer, then the
    close: nothing is left for the client to miss. Timed words are on by default."""
    audio, pause_start, _ = _two_utterances(tone_model[1])
    answers, ending = _vosk_client(vosk_url, {"sample_rate": 16000}, [_pcm16(audio)])
    assert ending == "closed" and len(answers) == 2
    both, at_eof = answers
    words = both["result"]  # the second utterance starts 1 s after the pause does
    assert words[0]["start"] < pause_start and words[-1]["start"] > pause_start + 0.5
    assert both["text"].count(".") == 2, both  # two sentences, written
    assert at_eof == {"text": ""}  # the audio ended in a pause: nothing was left to say
    chunks = [_pcm16(audio[i : i + 4000]) for i in range(0, len(audio), 4000)]
    answers, ending = _vosk_client(vosk_url, {"sample_rate": 16000}, chunks)
    assert ending == "closed" and len(answers) == len(chunks) + 1
    finals = [a for a in answers if "text" in a and a["text"]]
    assert len(finals) == 2 and all(f["result"] for f in finals)


@pytest.mark.slow
def test_a_vosk_client_hears_the_same_whatever_its_message_size(vosk_url, tone_model):
    """0.2 s and 1 s messages (issue 34 item 8: they differed on 2 of 5 files)."""
    audio, _, _ = _two_utterances(tone_model[1])
    heard = []
    for block in (3200, 16000):
        chunks = [_pcm16(audio[i : i + block]) for i in range(0, len(audio), block)]
        answers, _ = _vosk_client(vosk_url, {"raw": True}, chunks)
        heard.append([(a["text"], a.get("result")) for a in answers if a.get("text")])
    assert heard[0] == heard[1] and len(heard[0]) == 2


@pytest.mark.slow
def test_a_vosk_client_can_turn_words_off(vosk_url, tone_model):
    audio, _, _ = _two_utterances(tone_model[1])
    for words in (False, 0):
        answers, _ = _vosk_client(vosk_url, {"words": words}, [_pcm16(audio)])
        assert answers[0]["text"] and "result" not in answers[0]


@pytest.mark.slow
def test_a_vosk_client_gets_max_alternatives(vosk_url, tone_model):
    """Finals as Vosk words an n-best: alternatives, best first, distinct spoken texts; the
    first is the text a client without the option gets, and carries the timed words."""
    utt = read_manifest(tone_model[1])[0]
    message = [_pcm16(load_audio(utt.audio_filepath))]
    plain, _ = _vosk_client(vosk_url, {"raw": True}, message)
    answers, _ = _vosk_client(vosk_url, {"max_alternatives": 3}, message)
    said = [a for a in answers if "alternatives" in a]
    assert said and all("text" not in a for a in answers if "partial" not in a)
    final = " ".join(a["text"] for a in plain if a.get("text"))
    best = " ".join(a["alternatives"][0]["text"] for a in said if a["alternatives"][0]["text"])
    assert best == final == utt.text
    for answer in said:
        alternatives = answer["alternatives"]
        texts = [a["text"] for a in alternatives]
        scores = [a["confidence"] for a in alternatives]
        assert 1 <= len(alternatives) <= 3 and len(set(texts)) == len(texts)
        assert scores == sorted(scores, reverse=True)
    assert any(len(a["alternatives"]) > 1 for a in said)  # the beam did find others
    assert any(a["alternatives"][0].get("result") for a in said)


@pytest.mark.slow
@pytest.mark.parametrize(
    "config, reason",
    [
        ({"max_alternatives": 21}, "max_alternatives must be an integer 0-20"),
        ({"max_alternatives": "3"}, "max_alternatives must be an integer 0-20"),
        ({"max_alternatives": True}, "max_alternatives must be an integer 0-20"),
        ({"words": "yes"}, "words must be true or false"),
        ({"words": 2}, "words must be true or false"),
        ({"phrase_list": "captain nemo"}, "phrase_list must be a list of strings"),
    ],
)
def test_a_vosk_config_out_of_its_rules_is_refused(vosk_url, config, reason):
    from websockets.exceptions import ConnectionClosedError
    from websockets.sync.client import connect

    with connect(vosk_url) as ws:
        ws.send(json.dumps({"config": config}))
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1007 and reason in closed.value.rcvd.reason


# --- Wyoming as Home Assistant uses it (issue 34 items 1 and 7) --------------------------


def test_wyoming_describes_the_model_that_runs_and_answers_pings(random_stream_model):
    async def client(reader, writer):
        writer.write(_event("describe") + _event("ping", {"text": "hi"}))
        return await _next_event(reader), await _next_event(reader)

    info, pong = _wyoming_exchange(random_stream_model, client)
    (program,) = info["data"]["asr"]
    (model,) = program["models"]
    assert model["name"] == Path(random_stream_model.source).name  # the model that runs
    assert program["supports_transcript_streaming"] is False  # it sends no streaming events
    assert program["attribution"]["url"] != "https://github.com/" and model["version"] != "1"
    assert pong == {"type": "pong", "data": {"text": "hi"}}


def test_idle_wyoming_connections_hold_no_stream_slot(random_stream_model):
    """max_streams 1: two idle connections, then a third transcribes; a second utterance at
    once is refused as busy."""

    async def client(reader, writer):
        idle = [await asyncio.open_connection(*writer.get_extra_info("peername")[:2])]
        idle.append(await asyncio.open_connection(*writer.get_extra_info("peername")[:2]))
        fmt = {"rate": 16000, "width": 2, "channels": 1}
        writer.write(_event("audio-start", fmt) + _event("audio-chunk", fmt, bytes(3200)))
        other_reader, other_writer = idle[0]
        other_writer.write(_event("audio-start", fmt))  # a second utterance while one runs
        busy = await _next_event(other_reader)
        writer.write(_event("audio-stop"))
        transcript = await _next_event(reader)
        for _, w in idle:
            w.close()
        return busy, transcript

    busy, transcript = _wyoming_exchange(random_stream_model, client, stream_idle_timeout=5.0)
    assert busy["type"] == "error" and busy["data"]["code"] == "1013"
    assert transcript["type"] == "transcript"


@pytest.mark.slow
def test_wyoming_names_and_terms_bias_the_words(tone_model, tmp_path):
    """wyoming 1.10's transcript_names and transcript_terms favour their words, as hotwords:
    a lexicon without the utterance's last word hears it only when they bring it."""
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    from asr.serve import ServeConfig, Server
    from asr.serve.wyoming import wyoming_server

    recognizer, utt, _ = _without_last_word(tone_model, tmp_path)
    missing = utt.text.split()[-1]
    pcm = _pcm16(load_audio(utt.audio_filepath))

    async def said(**biasing) -> str:
        server = await wyoming_server(Server(recognizer, ServeConfig()), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, AsyncTcpClient("127.0.0.1", port) as client:
            request = Transcribe(language="en", **biasing).event()
            request.data["raw"] = True
            await client.write_event(request)
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            chunk = AudioChunk(rate=16000, width=2, channels=1, audio=pcm)
            await client.write_event(chunk.event())
            await client.write_event(AudioStop().event())
            return Transcript.from_event(await client.read_event()).text

    assert missing not in asyncio.run(said()).split()
    assert asyncio.run(said(transcript_terms=[missing])) == utt.text
    assert asyncio.run(said(transcript_names=[utt.text])) == utt.text


@pytest.mark.parametrize(
    "data, words",
    [
        ({"transcript_names": "Kitchen"}, "transcript_names must be a list of strings"),
        ({"transcript_terms": ["!!!"]}, "has no letters"),
    ],
)
def test_wyoming_biasing_out_of_its_rules_is_an_error(random_stream_model, data, words):
    async def client(reader, writer):
        writer.write(_event("transcribe", data))
        return await _next_event(reader)

    event = _wyoming_exchange(random_stream_model, client)
    assert event["type"] == "error" and words in event["data"]["text"]


# --- one server, two models: files by the default, live streams by a streaming one -------


def test_a_server_without_a_streaming_model_says_live_streams_are_off(tmp_path):
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from asr.serve import ServeConfig, Server, server_app
    from tests.helpers import tiny_checkpoint

    tiny_checkpoint(tmp_path, ModelConfig(num_layers=1, hidden_size=8, conv_channels=4))
    server = Server(load_model(tmp_path, "cpu", "torch", raw=True), ServeConfig())
    assert server.live is None and "live streams are off" in server.live_note
    assert "--stream-model" in server.live_note
    with (
        TestClient(server_app(server), base_url=LOCAL) as client,
        client.websocket_connect(WS) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 1008 and "live text is off" in closed.value.reason
    assert "--stream-model" in closed.value.reason  # whole: under the 123 bytes of a reason


def test_the_bundled_streaming_model_serves_live_streams_when_no_model_is_named(tmp_path):
    from asr.inference.model_folder import DEFAULT_MODEL, STREAM_MODEL, live_model_path

    assert live_model_path(None, None) == STREAM_MODEL and STREAM_MODEL.is_dir()
    assert live_model_path(DEFAULT_MODEL, None) is None  # a named model streams itself
    assert live_model_path(None, tmp_path) == live_model_path("x", tmp_path) == tmp_path


@pytest.mark.slow
def test_asr_serve_with_no_options_streams_and_transcribes(tmp_path):
    """`asr serve` as a user starts it: the bundled models answer an upload, a Vosk client's
    live stream and a Wyoming transcription of data/samples/sample.wav."""
    import socket
    import subprocess
    import sys
    import urllib.request

    from websockets.sync.client import connect

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    port, wyoming_port = free_port(), free_port()
    command = [sys.executable, "-m", "asr", "serve", "--port", str(port)]
    command += ["--wyoming-port", str(wyoming_port)]
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as answer:
                    health = json.load(answer)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        assert Path(health["model"]).name == "en-phones"
        assert Path(health["stream_model"]).name == "en-stream"
        sample = Path(__file__).resolve().parent.parent / "data/samples/sample.wav"
        wave = load_audio(sample)
        with connect(f"ws://127.0.0.1:{port}/v1/stream") as ws:
            ws.send(json.dumps({"config": {"sample_rate": 16000}}))
            answers = []
            for i in range(0, len(wave), 8000):
                ws.send(_pcm16(wave[i : i + 8000]))
                answers.append(json.loads(ws.recv(timeout=60)))
            ws.send('{"eof": 1}')
            answers.append(json.loads(ws.recv(timeout=60)))
        live = " ".join(a["text"] for a in answers if a.get("text"))
        assert "old man" in live.lower() and any(a.get("partial") for a in answers)

        async def wyoming() -> tuple[dict, str]:
            from wyoming.asr import Transcribe, Transcript
            from wyoming.audio import AudioChunk, AudioStart, AudioStop
            from wyoming.client import AsyncTcpClient
            from wyoming.info import Describe

            async with AsyncTcpClient("127.0.0.1", wyoming_port) as client:
                await client.write_event(Describe().event())
                info = (await client.read_event()).data
                await client.write_event(Transcribe(language="en").event())
                await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                audio = AudioChunk(rate=16000, width=2, channels=1, audio=_pcm16(wave))
                await client.write_event(audio.event())
                await client.write_event(AudioStop().event())
                return info, Transcript.from_event(await client.read_event()).text

        info, heard = asyncio.run(wyoming())
        assert info["asr"][0]["models"][0]["name"] == "en-phones"
        assert "old man" in heard.lower() and heard[0].isupper()
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.mark.slow
def test_the_streamed_text_does_not_depend_on_the_message_size(tone_model):
    """Two utterances and a pause sent in 0.1 s, 0.2 s, 1 s and 3 s pieces: the same finals,
    word for word and time for time (the forward state is reset at the step after an
    endpoint, not after the message that held it)."""
    folder, manifest = tone_model
    recognizer = load_model(folder, "cpu", "onnx")
    waves = [load_audio(u.audio_filepath) for u in read_manifest(manifest)[2:4]]
    pause = np.random.default_rng(0).normal(0, 0.003, 16000).astype(np.float32)
    audio = np.concatenate([waves[0], pause, waves[1], pause, waves[0]])

    def finals(block: int) -> list[tuple]:
        stream = recognizer.stream(raw=True)
        events = [
            e for i in range(0, len(audio), block) for e in stream.accept(audio[i : i + block])
        ]
        said = [e for e in [*events, *stream.finish()] if e.kind == "final" and e.text]
        return [(e.text, e.start, e.end, [(w.word, w.start) for w in e.words]) for e in said]

    heard = finals(1600)
    assert len(heard) == 3
    for block in (3200, 16000, 48000):
        assert finals(block) == heard, block


# --- OpenAI Realtime transcription, with the openai SDK's realtime client (item 9) -------


@pytest.fixture(scope="module")
def realtime_client(tone_model):
    """An openai.OpenAI client of a running server whose live model is the tone model."""
    openai = pytest.importorskip("openai")
    from asr.serve import ServeConfig, create_app
    from tests.browser import serve_in_thread

    recognizer = load_model(tone_model[0], "cpu", "onnx")
    for url in serve_in_thread(create_app(recognizer, ServeConfig())):
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def _realtime_turns(client, manifest, vad) -> tuple[list, list]:
    """Two tone utterances with pauses, at 24 kHz in 0.2 s appends, then a commit: (every
    server event until the commit's answer, the utterances)."""
    import base64

    from asr.audio import resample

    audio, _, utterances = _two_utterances(manifest)
    pcm = _pcm16(resample(audio, 16000, 24000))
    session = {"type": "transcription", "audio": {"input": {"turn_detection": vad}}}
    session["audio"]["input"]["format"] = {"type": "audio/pcm", "rate": 24000}
    session["audio"]["input"]["transcription"] = {"model": "gpt-4o-transcribe", "language": "en"}
    events = []
    query = {"intent": "transcription"}
    with client.realtime.connect(model="gpt-4o-transcribe", extra_query=query) as conn:
        events.append(conn.recv())
        conn.session.update(session=session)
        events.append(conn.recv())
        for i in range(0, len(pcm), 9600):
            conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + 9600]).decode())
        conn.input_audio_buffer.commit()
        last = "error" if vad else "conversation.item.input_audio_transcription.completed"
        while events[-1].type != last:
            events.append(conn.recv())
    return events, utterances


@pytest.mark.slow
def test_a_realtime_client_gets_each_turn_at_a_pause(realtime_client, tone_model):
    """Server VAD: each utterance is a turn (speech_started, speech_stopped, committed, a
    delta, completed, in that order, on one item); the commit after them has nothing to
    commit and is an error event, as OpenAI's is."""
    events, utterances = _realtime_turns(realtime_client, tone_model[1], {"type": "server_vad"})
    created, updated, *turns, empty = events
    assert created.type == "session.created" and updated.type == "session.updated"
    assert updated.session.audio.input.format.rate == 24000
    assert empty.type == "error" and empty.error.code == "input_audio_buffer_commit_empty"
    kinds = [e.type for e in turns]
    one_turn = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert kinds == one_turn * 2
    first, second = turns[:5], turns[5:]
    for turn in (first, second):
        assert len({e.item_id for e in turn}) == 1
        assert turn[3].delta == turn[4].transcript and turn[4].transcript[:1].isupper()
        assert turn[0].audio_start_ms < turn[1].audio_end_ms
    assert second[2].previous_item_id == first[2].item_id
    assert first[1].audio_end_ms <= second[0].audio_start_ms  # a turn starts where one ended
    heard = normalize_text(first[4].transcript).split()
    assert heard and set(heard) <= set(utterances[0].text.split())


@pytest.mark.slow
def test_a_realtime_turn_without_vad_ends_at_the_commit(realtime_client, tone_model):
    events, _ = _realtime_turns(realtime_client, tone_model[1], None)
    turns = [e for e in events[2:] if e.type.startswith("conversation.item")]
    assert [e.type for e in turns][-1] == "conversation.item.input_audio_transcription.completed"
    assert len(turns) == 2  # one turn: both utterances, at the commit
    assert turns[-1].transcript.count(".") == 2


@pytest.mark.slow
def test_realtime_events_it_cannot_use_are_error_events(realtime_client):
    query = {"intent": "transcription"}
    with realtime_client.realtime.connect(model="x", extra_query=query) as conn:
        conn.recv()
        conn.input_audio_buffer.append(audio="not base64!")
        bad_audio = conn.recv()
        pcmu = {"input": {"format": {"type": "audio/pcmu"}}}
        conn.session.update(session={"type": "transcription", "audio": pcmu})
        bad_format = conn.recv()
        conn.send({"type": "response.create"})
        unknown = conn.recv()
        conn.session.update(session={"type": "transcription"})
        still_open = conn.recv()
    assert bad_audio.error.param == "audio" and "base64" in bad_audio.error.message
    assert "audio/pcmu" in bad_format.error.message
    assert unknown.error.code == "invalid_type"
    assert still_open.type == "session.updated"
    from websockets.exceptions import ConnectionClosedError

    with (
        pytest.raises(ConnectionClosedError) as closed,
        realtime_client.realtime.connect(model="x") as conn,
    ):
        conn.recv()  # no intent=transcription: closed with the reason
    assert closed.value.rcvd.code == 1008 and "intent=transcription" in closed.value.rcvd.reason
