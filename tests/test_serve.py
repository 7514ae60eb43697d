"""`asr serve`: every response format, the error codes, the limits (size, queue, time), the
page, and no upload left behind; with the tone oracle (known text and word times) and once
with the bundled model."""

from __future__ import annotations

import asyncio
import io
import logging
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import LOCAL, ToneOracleRecognizer, assert_raw, assert_written, parse_srt, parse_vtt
from starlette.testclient import TestClient

from asr.audio import AudioError, load_audio
from asr.cli import build_parser, main, serve_config
from asr.corpora.tones import ToneConfig, random_sentence, render_tones_timed
from asr.decode import DecodingOptions
from asr.inference.model_folder import STREAM_MODEL
from asr.serve import ServeConfig, Server, create_app, server_app

SR = 16_000
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"
URL = "/v1/audio/transcriptions"


class OracleRecognizer(ToneOracleRecognizer):
    """The tone oracle, decoding greedily (with `decoding`: DecodingOptions fields, as
    load_model takes them), remembering the longest waveform it was given."""

    def __init__(self, **decoding) -> None:
        super().__init__()
        self.default_options = DecodingOptions(**decoding)
        self.longest = 0  # samples

    def log_probs(self, waveforms):
        self.longest = max([self.longest, *(len(w) for w in waveforms)])
        return super().log_probs(waveforms)


class GatedRecognizer(OracleRecognizer):
    """Recognitions wait for `gate`: a busy server on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def transcribe(self, *args, **kwargs):
        assert self.gate.wait(30), "the test never opened the gate"
        return super().transcribe(*args, **kwargs)


def _tone_recording(text: str, seed: int = 0):
    """(WAV bytes, waveform, [(word, start, end)]) of `text` in the tone corpus."""
    wave, words = render_tones_timed(text, np.random.default_rng(seed), ToneConfig())
    return _wav_bytes(wave), wave, words


def _wav_bytes(wave: np.ndarray, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, SR, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.fixture
def upload_dir(tmp_path):
    path = tmp_path / "uploads"
    path.mkdir()
    return path


def _client(recognizer, upload_dir, **limits) -> TestClient:
    config = ServeConfig(upload_dir=str(upload_dir), **limits)
    return TestClient(create_app(recognizer, config), base_url=LOCAL)


def _post(client, data: bytes, name="a.wav", **fields):
    return client.post(URL, files={"file": (name, data, "audio/wav")}, data=fields)


# --- response formats --------------------------------------------------------------------

TEXT = "the big dog sat on a red mat"
WRITTEN = "The big dog sat on a red mat."  # TEXT as the bundled punctuation model writes it


def _cli_output(fmt: str, wav: Path, out: Path, monkeypatch, *flags: str) -> str:
    """What `asr transcribe --output-format` (and `flags`) writes for the file, with the
    same oracle."""
    import asr.inference.recognizer

    load = lambda *a, **decoding: OracleRecognizer(**decoding)  # noqa: E731
    monkeypatch.setattr(asr.inference.recognizer, "load_model", load)
    cli_format = {"json": "txt", "text": "txt"}.get(fmt, fmt)  # OpenAI's json: the text
    argv = ["transcribe", str(wav), "--output-format", cli_format, "--output-dir", str(out)]
    assert main([*argv, *flags]) == 0
    return (out / f"{wav.stem}.{cli_format}").read_text(encoding="utf-8")


def _text_of(fmt: str, response) -> str:
    """The transcript's text in a response of format `fmt` (subtitles: their cues' lines)."""
    if fmt == "json":
        return response.json()["text"]
    if fmt in ("srt", "vtt"):
        cues = (parse_srt if fmt == "srt" else parse_vtt)(response.text)
        return " ".join(text for _, _, text in cues)
    return response.text.rstrip("\n")


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt"])
def test_each_response_format_is_what_the_cli_writes(fmt, raw, tmp_path, upload_dir, monkeypatch):
    """Written text by default, the spoken words with the raw field (the CLI: --raw)."""
    data, _, _ = _tone_recording(TEXT)
    (tmp_path / "a.wav").write_bytes(data)
    fields = {"raw": "true"} if raw else {}
    with _client(OracleRecognizer(), upload_dir) as client:
        response = _post(client, data, response_format=fmt, **fields)
    assert response.status_code == 200, response.text
    flags = ["--raw"] if raw else []
    written = _cli_output(fmt, tmp_path / "a.wav", tmp_path / "cli", monkeypatch, *flags)
    if fmt == "json":
        assert response.json() == {"text": written.strip()}
    else:
        assert response.text == written
    assert _text_of(fmt, response) == (TEXT if raw else WRITTEN)
    assert list(upload_dir.iterdir()) == []


def test_raw_field_overrides_the_server_default(upload_dir):
    """`asr serve --raw` makes the spoken words the default; raw=false asks for the written
    text all the same, and a raw field that is not a boolean is a 400 naming it."""
    data, _, _ = _tone_recording(TEXT)
    with _client(OracleRecognizer(raw=True), upload_dir) as client:
        default = _post(client, data).json()["text"]
        written = _post(client, data, raw="false").json()["text"]
        for value in ("0", "FALSE"):
            assert _post(client, data, raw=value).json()["text"] == WRITTEN
        bad = _post(client, data, raw="maybe")
    assert default == TEXT and written == WRITTEN
    assert bad.status_code == 400 and "field 'raw' must be true or false" in bad.text
    assert bad.json()["error"]["param"] == "raw"


def test_verbose_json_has_segments_and_timed_words(upload_dir):
    """The text and the segments are written; the timed words are the spoken words."""
    data, wave, truth = _tone_recording(TEXT)
    with _client(OracleRecognizer(), upload_dir) as client:
        body = _post(client, data, response_format="verbose_json").json()
    assert body["text"] == WRITTEN
    assert body["language"] == "english"
    assert body["duration"] == pytest.approx(len(wave) / SR, abs=1e-3)
    assert [w["word"] for w in body["words"]] == TEXT.split()
    for word, (_, start, end) in zip(body["words"], truth, strict=True):
        assert abs(word["start"] - start) < 0.1 and abs(word["end"] - end) < 0.1
        assert 0.0 <= word["confidence"] <= 1.0
    segments = body["segments"]
    assert " ".join(s["text"] for s in segments) == WRITTEN
    assert segments[0]["start"] == body["words"][0]["start"]
    assert segments[-1]["end"] == body["words"][-1]["end"]


def test_long_recording_is_split_at_pauses_and_stitched(upload_dir):
    rng, text_rng = np.random.default_rng(1), random.Random(1)
    waves, texts, truth, offset = [], [], [], 0.0
    while offset < 40.0:  # sentences until 40 s, each followed by its word-boundary chord
        text = random_sentence(text_rng, max_words=6)
        wave, words = render_tones_timed(text + " ", rng, ToneConfig())
        waves.append(wave)
        texts.append(text)
        truth += [(w, offset + s, offset + e) for w, s, e in words]
        offset += len(wave) / SR
    recognizer = OracleRecognizer()
    with _client(recognizer, upload_dir, max_seconds=10.0) as client:
        response = _post(client, _wav_bytes(np.concatenate(waves)), response_format="verbose_json")
    body = response.json()
    assert recognizer.longest <= 10 * SR  # no piece longer than max_seconds reached the model
    assert_written(body["text"], " ".join(texts))  # the whole recording, written
    errors = [
        max(abs(w["start"] - s), abs(w["end"] - e))
        for w, (_, s, e) in zip(body["words"], truth, strict=True)
    ]
    assert max(errors) < 0.1


def test_fields_openai_clients_send_are_accepted(upload_dir):
    data, _, _ = _tone_recording("a cat")
    fields = {
        "model": "whisper-1",
        "prompt": "cats",
        "temperature": "0.2",
        "language": "EN",
        "timestamp_granularities[]": "word",
        "response_format": "json",
    }
    with _client(OracleRecognizer(), upload_dir) as client:
        response = _post(client, data, **fields)
    assert response.status_code == 200, response.text
    assert response.json() == {"text": "A cat."}


# --- the official openai SDK against a running server -------------------------------------


@pytest.fixture
def openai_server(tmp_path, upload_dir):
    """(an openai.OpenAI client, the recognizer) of a server in a thread whose model folder
    is named en-default."""
    openai = pytest.importorskip("openai")
    from browser import serve_in_thread

    folder = tmp_path / "en-default"
    folder.mkdir()
    recognizer = OracleRecognizer()
    recognizer.source = str(folder)
    app = create_app(recognizer, ServeConfig(upload_dir=str(upload_dir)))
    for url in serve_in_thread(app):
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0), recognizer


def test_openai_sdk_lists_and_retrieves_the_loaded_model(openai_server):
    """GET /v1/models and /v1/models/{id}: the loaded model, named by its folder; an
    unknown id is a 404 in OpenAI's error shape."""
    import openai

    client, recognizer = openai_server
    (model,) = client.models.list().data
    assert (model.id, model.object, model.owned_by) == ("en-default", "model", "asr")
    assert model.created == int(Path(recognizer.source).stat().st_mtime)
    assert client.models.retrieve("en-default") == model
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("whisper-1")
    assert missing.value.status_code == 404
    assert "'whisper-1' does not exist" in missing.value.message
    assert missing.value.body["param"] == "model"


def test_models_are_behind_the_same_guards(upload_dir):
    with _client(OracleRecognizer(), upload_dir) as client:
        assert client.get("/v1/models").json()["data"][0]["id"] == "tone oracle"
        evil = client.get("/v1/models", headers={"Origin": "http://evil.example"})
        rebound = client.get("/v1/models/tone oracle", headers={"Host": "attacker.example"})
        unknown = client.get("/v1/models/x")
    assert evil.status_code == 403 and rebound.status_code == 403
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 404


def test_openai_sdk_verbose_json_segments_have_whisper_fields(openai_server):
    """Every segment's seek, tokens, temperature, avg_logprob, compression_ratio and
    no_speech_prob are set, so Whisper's usual filtering code runs on them."""
    client, recognizer = openai_server
    data, _, _ = _tone_recording(TEXT)
    result = client.audio.transcriptions.create(
        model="en-default", file=("a.wav", data), response_format="verbose_json"
    )
    assert result.text == WRITTEN and result.segments
    fields = ("seek", "tokens", "temperature", "avg_logprob", "compression_ratio")
    fields += ("no_speech_prob",)
    spoken = []
    for seg in result.segments:
        assert all(getattr(seg, name) is not None for name in fields), seg
        kept = not (seg.no_speech_prob > 0.6 and seg.avg_logprob < -1)  # Whisper's filter
        assert kept and seg.compression_ratio > 0 and seg.temperature == 0.0
        assert seg.seek == round(seg.start * 100)
        spoken.append(recognizer.vocab.decode(seg.tokens))
    assert " ".join(spoken) == TEXT


def test_openai_sdk_streams_events_and_gets_logprobs(openai_server):
    """stream=True: transcript.text.delta events that join to the text, then
    transcript.text.done; include=["logprobs"]: one log-probability per spoken word."""
    client, _ = openai_server
    data, _, _ = _tone_recording(TEXT)
    events = list(
        client.audio.transcriptions.create(file=("a.wav", data), model="whisper-1", stream=True)
    )
    *deltas, done = events
    assert {e.type for e in deltas} == {"transcript.text.delta"} and len(deltas) == 8
    assert "".join(e.delta for e in deltas) == done.text == WRITTEN
    assert done.type == "transcript.text.done"
    result = client.audio.transcriptions.create(
        file=("a.wav", data), model="whisper-1", include=["logprobs"], stream=False
    )
    assert result.text == WRITTEN
    assert [p.token for p in result.logprobs] == TEXT.split()
    for p in result.logprobs:
        assert p.logprob <= 0 and bytes(map(int, p.bytes)).decode() == p.token


def test_openai_sdk_fields_accepted_where_they_mean_something(openai_server):
    import openai

    client, _ = openai_server
    data, _, _ = _tone_recording(TEXT)

    def create(**fields):
        return client.audio.transcriptions.create(file=("a.wav", data), model="x", **fields)

    vad = {"type": "server_vad", "silence_duration_ms": 500, "threshold": 0.5}
    for fields in ({"chunking_strategy": "auto"}, {"chunking_strategy": vad}):
        assert create(**fields).text == WRITTEN
    assert create(languages=["en", "en-US"], language="en_GB").text == WRITTEN
    for fields, words in [
        ({"languages": ["en", "de"]}, "language 'de' is not supported"),
        ({"chunking_strategy": {"type": "semantic"}}, "must be 'server_vad'"),
        ({"chunking_strategy": {**vad, "threshold": 2}}, "threshold must be a number in [0, 1]"),
        ({"include": ["segments"]}, "include[] 'segments' is not one of logprobs"),
        ({"stream": True, "response_format": "srt"}, "stream=true goes with response_format"),
        ({"include": ["logprobs"], "response_format": "vtt"}, "include[]=logprobs goes with"),
    ]:
        with pytest.raises(openai.BadRequestError) as refused:
            result = create(**fields)
            list(result) if fields.get("stream") else result
        assert words in refused.value.message, refused.value.message


def _encoded(wave: np.ndarray, container: str, codec: str, rate: int) -> bytes:
    """`wave` (16 kHz) as a browser or phone records it: Opus in WebM, AAC in MP4/M4A."""
    import av

    from asr.audio import resample

    pcm = (np.clip(resample(wave, SR, rate), -1, 1) * 32767).astype(np.int16)[None]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "container", "codec", "rate"),
    [("talk.webm", "webm", "libopus", 48000), ("memo.m4a", "ipod", "aac", 44100)],
)
def test_browser_and_phone_uploads_are_transcribed(name, container, codec, rate, upload_dir):
    """MediaRecorder's WebM/Opus and Safari's or iOS's M4A/AAC, read through PyAV."""
    pytest.importorskip("av")
    _, wave, _ = _tone_recording(TEXT)
    data = _encoded(wave, container, codec, rate)
    with _client(OracleRecognizer(), upload_dir) as client:
        response = _post(client, data, name=name, response_format="verbose_json")
    assert response.status_code == 200, response.text
    assert response.json()["text"] == WRITTEN
    assert abs(response.json()["duration"] - len(wave) / SR) < 0.1


def test_openai_sdk_uploads_webm_and_m4a(openai_server):
    """The SDK's upload of a browser's WebM and a phone's M4A to a running server."""
    pytest.importorskip("av")
    client, _ = openai_server
    _, wave, _ = _tone_recording(TEXT)
    for name, container, codec, rate in [
        ("talk.webm", "webm", "libopus", 48000),
        ("memo.m4a", "ipod", "aac", 44100),
    ]:
        data = _encoded(wave, container, codec, rate)
        result = client.audio.transcriptions.create(file=(name, data), model="whisper-1")
        assert result.text == WRITTEN, name


def test_without_pyav_a_webm_upload_says_how_to_read_it(upload_dir, monkeypatch):
    pytest.importorskip("av")
    _, wave, _ = _tone_recording(TEXT)
    data = _encoded(wave, "webm", "libopus", 48000)
    monkeypatch.setitem(sys.modules, "av", None)  # import av: ImportError
    with _client(OracleRecognizer(), upload_dir) as client:
        response = _post(client, data, name="talk.webm")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("talk.webm: WebM/Matroska audio needs PyAV")
    assert "pip install 'asr[media]'" in message


# --- errors ------------------------------------------------------------------------------


def _header_only_wav() -> bytes:
    return _wav_bytes(np.zeros(0, np.float32))


def _truncated_flac() -> bytes:
    noise = 0.1 * np.random.default_rng(0).standard_normal(2 * SR)
    buffer = io.BytesIO()
    sf.write(buffer, noise, SR, format="FLAC")
    return buffer.getvalue()[: buffer.tell() // 2]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", b"these are not audio samples\n"),
        ("cut.flac", _truncated_flac()),
        ("nothing.wav", _header_only_wav()),
    ],
)
def test_undecodable_audio_is_400_with_the_cli_message(name, data, tmp_path, upload_dir):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(AudioError) as cli_error:  # what `asr transcribe NAME` prints
        load_audio(tmp_path / name)
    expected = str(cli_error.value).replace(str(tmp_path / name), name)
    with _client(OracleRecognizer(), upload_dir) as client:
        response = _post(client, data, name=name)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == expected
    assert error["param"] == "file" and "asr-upload-" not in error["message"]
    assert list(upload_dir.iterdir()) == []


def _multipart(parts: list[tuple[str, bytes, str | None]]) -> tuple[bytes, dict]:
    """A multipart/form-data body of (name, value, filename or None for a text field)."""
    boundary = "b0und"
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


WAV = b"RIFF"  # never decoded: these requests fail before


SPEAKERS = "known_speaker_names[]"  # OpenAI's diarization: not done here


@pytest.mark.parametrize(
    ("parts", "param", "says"),
    [
        ([("file", b"", "empty.wav")], "file", "empty.wav: the uploaded file is empty"),
        ([("audio", WAV, "a.wav")], "audio", "unknown field 'audio'"),
        ([("response_format", b"json", None)], "file", "missing field 'file'"),
        ([("file", b"a.wav", None)], "file", "'file' must be a file part"),
        ([("model", b"m", "m.txt")], "model", "field 'model' must be text"),
        ([("file", WAV, "a.wav"), ("file", WAV, "b.wav")], None, "Too many files"),
        ([("file", WAV, "a.wav"), ("response_format", b"xml", None)], "response_format", "'xml'"),
        ([("file", WAV, "a.wav"), ("language", b"fr", None)], "language", "English (en)"),
        ([("file", WAV, "a.wav"), ("stream", b"yes", None)], "stream", "true or false"),
        ([("file", WAV, "a.wav"), (SPEAKERS, b"x", None)], SPEAKERS, "unknown field"),
    ],
)
def test_bad_fields_are_400_naming_the_field(parts, param, says, upload_dir):
    body, headers = _multipart(parts)
    with _client(OracleRecognizer(), upload_dir) as client:
        response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"], error
    assert list(upload_dir.iterdir()) == []


def test_a_body_that_is_not_multipart_is_400(upload_dir):
    with _client(OracleRecognizer(), upload_dir) as client:
        response = client.post(URL, json={"file": "sample.wav"})
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["error"]["message"]


def test_the_media_type_is_case_insensitive(upload_dir):
    """RFC 9110: "Multipart/Form-Data" is multipart/form-data (it was a 400)."""
    data = _tone_recording("the cat")[0]
    with _client(OracleRecognizer(), upload_dir) as client:
        request = client.build_request("POST", URL, files={"file": ("a.wav", data, "audio/wav")})
        body, content_type = request.read(), request.headers["content-type"]
        mixed = content_type.replace("multipart/form-data", "Multipart/Form-Data")
        response = client.post(URL, content=body, headers={"Content-Type": mixed})
    assert mixed != content_type
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "The cat."


def test_oversized_upload_is_413(upload_dir):
    data = _wav_bytes(np.zeros(4 * SR, np.float32))  # 128 KiB of samples
    with _client(OracleRecognizer(), upload_dir, max_upload_mb=0.05) as client:
        response = _post(client, data)
    assert response.status_code == 413
    assert "0.05 MiB" in response.json()["error"]["message"]
    assert list(upload_dir.iterdir()) == []


class _ChunkedBody:
    """An ASGI `receive` handing out `chunks` one per call, counting the calls."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.read = chunks, 0

    async def __call__(self):
        self.read += 1
        body = self.chunks[self.read - 1] if self.read <= len(self.chunks) else b""
        return {"type": "http.request", "body": body, "more_body": self.read < len(self.chunks)}


class _Sent(list):
    async def __call__(self, message):
        self.append(message)


_MULTIPART = [(b"content-type", b"multipart/form-data; boundary=b0und")]


def _post_scope(headers: list) -> dict:
    """The ASGI scope of a POST to the endpoint from 127.0.0.1, Host the server's own."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }


def _call_asgi(app, headers: list, chunks: list[bytes]) -> tuple[int, int]:
    """POST `chunks` to the app as an ASGI server would; (status, chunks the app read)."""
    scope = _post_scope(headers)
    receive, sent = _ChunkedBody(chunks), _Sent()
    asyncio.run(app(scope, receive, sent))
    return sent[0]["status"], receive.read


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_body_is_refused_before_it_is_all_read(declared, upload_dir):
    boundary = "b0und"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    chunks = [head] + [b"\0" * 2**16] * 32  # 2 MiB, with a 0.25 MiB limit
    headers = [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())]
    if declared:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    config = ServeConfig(max_upload_mb=0.25, upload_dir=str(upload_dir))
    app = create_app(OracleRecognizer(), config)
    status, read = _call_asgi(app, headers, chunks)
    assert status == 413
    # With Content-Length nothing is read; without it, reading stops just past the limit.
    assert read == 0 if declared else 4 <= read <= 6
    assert list(upload_dir.iterdir()) == []


# --- queue and time limit ----------------------------------------------------------------


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_full_queue_is_503_and_queued_requests_finish(upload_dir):
    data, _, _ = _tone_recording("we go")
    recognizer = GatedRecognizer()
    server = Server(recognizer, ServeConfig(workers=1, max_queue=1, upload_dir=str(upload_dir)))
    app, queue = server_app(server), server.queue
    responses = []
    with TestClient(app, base_url=LOCAL) as client:
        threads = [
            threading.Thread(target=lambda: responses.append(_post(client, data))) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        _wait_for(lambda: queue.pending == 2)  # one running, one waiting
        refused = _post(client, data)
        recognizer.gate.set()
        for thread in threads:
            thread.join(30)
    assert refused.status_code == 503
    assert "busy" in refused.json()["error"]["message"]
    assert [r.status_code for r in responses] == [200, 200]
    assert all(r.json() == {"text": "We go."} for r in responses)
    assert queue.pending == 0
    assert list(upload_dir.iterdir()) == []


def test_time_limit_is_504_and_the_upload_is_removed_at_once(upload_dir):
    data, _, _ = _tone_recording("we go")
    recognizer = GatedRecognizer()
    server = Server(recognizer, ServeConfig(timeout=0.3, upload_dir=str(upload_dir)))
    with TestClient(server_app(server), base_url=LOCAL) as client:
        started = time.monotonic()
        response = _post(client, data, name="slow.wav")
        waited = time.monotonic() - started
        assert list(upload_dir.iterdir()) == []  # while the recognition still runs
        assert server.queue.pending == 1  # which holds its worker
        recognizer.gate.set()
        _wait_for(lambda: server.queue.pending == 0)
    assert response.status_code == 504
    assert response.json()["error"]["message"] == "slow.wav: not transcribed within 0.3 s"
    assert waited < 5.0


# --- other endpoints, logging, CLI -------------------------------------------------------


def test_health_page_and_only_the_page_files_are_served(upload_dir):
    with _client(OracleRecognizer(), upload_dir) as client:
        health = client.get("/health").json()
        page = client.get("/")
        script = client.get("/static/app.js")
        outside = client.get("/static/../serve.py")
        missing = client.get("/static/index.html")
    expected = {"status": "ok", "model": "tone oracle", "stream_model": None}  # cannot stream
    assert health == {**expected, "pending": 0, "capacity": 9}
    assert page.status_code == 200 and 'id="file"' in page.text and 'id="record"' in page.text
    assert script.status_code == 200 and "/v1/audio/transcriptions" in script.text
    assert outside.status_code == 404 and missing.status_code == 404


def test_one_log_line_per_request_with_audio_seconds_and_rtf(upload_dir, caplog):
    data, wave, _ = _tone_recording("see the sun")
    with (
        caplog.at_level(logging.INFO, logger="asr.serve"),
        _client(OracleRecognizer(), upload_dir) as client,
    ):
        _post(client, data)
        _post(client, b"nope", name="x.txt")
    lines = [r.getMessage() for r in caplog.records if r.name == "asr.serve"]
    assert len(lines) == 2
    assert lines[0].startswith(f"POST {URL} 200 in ")
    assert f"audio {len(wave) / SR:.2f} s, RTF " in lines[0]
    assert lines[1].startswith(f"POST {URL} 400 in ") and "RTF" not in lines[1]


def test_cli_defaults_are_the_config_defaults():
    args = build_parser().parse_args(["serve"])
    assert serve_config(args) == ServeConfig()
    assert ServeConfig().host == "127.0.0.1"


def test_cli_serve_loads_the_model_once_and_runs_the_server(monkeypatch):
    import asr.inference.recognizer
    import asr.serve

    calls = []
    recognizer = OracleRecognizer()
    load = lambda *a, **decoding: calls.append((a, decoding)) or recognizer  # noqa: E731
    monkeypatch.setattr(asr.inference.recognizer, "load_model", load)
    monkeypatch.setattr(asr.serve, "run_server", lambda *a: calls.append(a))
    argv = ["serve", "--decoder", "greedy", "--port", "8123", "--workers", "2", "--raw"]
    assert main(argv) == 0
    ((load_args, decoding), (live_args, live_decoding), (served, config, streamer)) = calls
    assert load_args == (None, "auto", "auto") and served is recognizer
    assert decoding == {"decoder": "greedy", "raw": True}  # resolved once, by load_model
    assert (config.port, config.workers, config.host) == (8123, 2, "127.0.0.1")
    # no --model: live streams run on the bundled streaming model, the search its own
    assert live_args == (STREAM_MODEL, "auto", "auto") and live_decoding == {"raw": True}
    assert streamer is recognizer  # (the stub loads one object)
    calls.clear()
    assert main(["serve", "--model", "exp/x"]) == 0
    ((load_args, _), (_, _, streamer)) = calls  # a named model: it streams itself, or not
    assert load_args[0] == "exp/x" and streamer is None


def test_cli_rejects_bad_limits(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert "serve.workers must be >= 1, got 0" in capsys.readouterr().err
    for flag, value in (("--max-upload-mb", "nan"), ("--timeout", "inf"), ("--timeout", "-1")):
        assert main(["serve", flag, value]) == 2
        name = flag[2:].replace("-", "_")
        assert f"serve.{name} must be a finite number > 0" in capsys.readouterr().err


def test_every_serve_flag_is_a_config_field():
    """The flags are built from ServeConfig's fields: a new limit is one field."""
    args = build_parser().parse_args(["serve", "--max-hotwords", "5", "--upload-dir", "/x"])
    config = serve_config(args)
    assert (config.max_hotwords, config.upload_dir) == (5, "/x")


# --- the bundled model -------------------------------------------------------------------


@pytest.mark.slow
def test_bundled_model_transcribes_the_sample_as_the_api_does(upload_dir):
    import asr

    recognizer = asr.load_model(device="cpu")
    (direct,) = recognizer.transcribe([SAMPLE])
    with _client(recognizer, upload_dir) as client:
        response = _post(client, SAMPLE.read_bytes(), name="sample.wav", response_format="text")
    assert response.status_code == 200
    assert response.text == direct.text + "\n"
    assert "winter" in direct.text  # the sample's words, not an empty transcript
    assert_written(direct.text, direct.raw_text)
    assert_raw(direct.raw_text)


# --- what a web page or a hostile client can make it do ---------------------------------


def test_a_page_of_another_origin_cannot_drive_the_server(upload_dir):
    data, _, _ = _tone_recording("a cat")
    files = {"file": ("a.wav", data, "audio/wav")}
    with _client(OracleRecognizer(), upload_dir) as client:
        evil = client.post(URL, files=files, headers={"Origin": "http://evil.example"})
        assert (
            evil.status_code == 403 and "cross-origin request from http://evil.example" in evil.text
        )
        page = client.post(URL, files=files, headers={"Origin": LOCAL})  # the server's own page
        assert page.status_code == 200 and page.json() == {"text": "A cat."}
        assert client.post(URL, files=files).status_code == 200  # curl, apps: no Origin
        preflight = client.options(URL, headers={"Origin": "http://evil.example"})
        assert preflight.status_code == 403
    config = {"allow_origin": ("http://app.example:3000",)}
    with _client(OracleRecognizer(), upload_dir, **config) as client:
        origin = {"Origin": "http://app.example:3000"}
        preflight = client.options(URL, headers=origin)
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "http://app.example:3000"
        allowed = client.post(URL, files=files, headers=origin)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://app.example:3000"


@pytest.mark.parametrize("host", ["attacker.example:8765", "192.168.1.5:8000", ""])
def test_only_the_names_it_is_bound_to_are_answered(host, upload_dir):
    """A DNS-rebound name (Host: attacker.example) reads nothing, /health included."""
    with _client(OracleRecognizer(), upload_dir) as client:
        refused = client.get("/health", headers={"Host": host})
        assert refused.status_code == 403 and "--allow-host" in refused.text
        for name in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
            assert client.get("/health", headers={"Host": name}).status_code == 200
    with _client(OracleRecognizer(), upload_dir, allow_host=("attacker.example",)) as client:
        assert client.get("/health", headers={"Host": "Attacker.example:8765"}).status_code == 200


def test_audio_longer_than_the_limit_is_refused_from_its_header(upload_dir):
    data, _, _ = _tone_recording("a cat")  # about 1 s
    with _client(OracleRecognizer(), upload_dir, max_audio_seconds=0.5) as client:
        response = _post(client, data)
    assert response.status_code == 413 and "--max-audio-seconds" in response.text
    assert list(upload_dir.iterdir()) == []


def test_a_stalled_upload_is_closed_with_408(upload_dir):
    """A client that sends headers and a few body bytes, then nothing."""

    class Stalling:
        def __init__(self):
            self.calls = 0

        async def __call__(self):
            self.calls += 1
            if self.calls == 1:
                return {"type": "http.request", "body": b"--b0und\r\n", "more_body": True}
            await asyncio.sleep(60)

    app = create_app(OracleRecognizer(), ServeConfig(read_timeout=0.2, upload_dir=str(upload_dir)))
    sent = _Sent()
    started = time.perf_counter()
    asyncio.run(app(_post_scope(_MULTIPART), Stalling(), sent))
    assert time.perf_counter() - started < 5
    assert sent[0]["status"] == 408
    assert b"nothing received for 0.2 s" in b"".join(m.get("body", b"") for m in sent[1:])


def test_a_client_that_leaves_mid_upload_is_one_quiet_line(upload_dir, caplog):
    class Leaving:
        def __init__(self):
            self.calls = 0

        async def __call__(self):
            self.calls += 1
            if self.calls == 1:
                return {"type": "http.request", "body": b"--b0und\r\n", "more_body": True}
            return {"type": "http.disconnect"}

    app = create_app(OracleRecognizer(), ServeConfig(upload_dir=str(upload_dir)))
    scope = _post_scope(_MULTIPART)
    with caplog.at_level(logging.INFO, logger="asr.serve"):
        asyncio.run(app(scope, Leaving(), _Sent()))
    records = [r for r in caplog.records if r.name == "asr.serve"]
    assert len(records) == 1 and "(client disconnected)" in records[0].getMessage()
    assert records[0].levelno == logging.INFO and records[0].exc_info is None


# --- connections that never finish a request head (issue 35 item 2) ------------------------


@pytest.fixture
def running_server(upload_dir):
    """(host, port) of a real uvicorn server on 127.0.0.1, started with the options
    `asr serve` gives it (connections.uvicorn_options): 4 connections, 0.5 s to a head."""
    from browser import serve_in_thread

    from asr.serve.connections import uvicorn_options

    limits = {"head_timeout": 0.5, "max_connections": 4, "upload_dir": str(upload_dir)}
    app = create_app(OracleRecognizer(), ServeConfig(**limits))
    for url in serve_in_thread(app, **uvicorn_options(ServeConfig(**limits))):
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _read_until_closed(sock, seconds: float = 5.0) -> tuple[bytes, float]:
    """What the server sent before closing the socket, and when it closed (seconds from
    now; `seconds` if it never did)."""
    sock.settimeout(seconds)
    start, received = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return received, seconds
    return received, time.monotonic() - start


def _health(address) -> int:
    import http.client

    conn = http.client.HTTPConnection(*address, timeout=5)
    conn.request("GET", "/health")
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_connection_that_sends_nothing_is_closed(running_server):
    import socket

    with socket.create_connection(running_server) as sock:
        received, took = _read_until_closed(sock)
    assert received == b"" and took < 3.0


def test_a_head_sent_a_line_at_a_time_is_bounded(running_server):
    """Header lines every 0.1 s do not restart the clock: 408 at 0.5 s from the opening,
    then closed."""
    import socket

    with socket.create_connection(running_server) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        for i in range(4):
            time.sleep(0.1)
            sock.sendall(f"x-slow-{i}: 1\r\n".encode())
        received, _ = _read_until_closed(sock)
        took = time.monotonic() - start
    assert received.startswith(b"HTTP/1.1 408") and b"request head in 0.5 s" in received
    assert took < 3.0


def test_idle_connections_do_not_shut_the_api_out(running_server):
    """As many silent sockets as --max-connections: requests get 503 while they stay open,
    and 200 once they are closed after 0.5 s."""
    import socket

    idle = [socket.create_connection(running_server) for _ in range(4)]
    try:
        time.sleep(1.5)
        assert _health(running_server) == 200
    finally:
        for sock in idle:
            sock.close()
