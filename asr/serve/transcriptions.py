"""OpenAI's transcription API over HTTP: POST /v1/audio/transcriptions, and the models it
lists: GET /v1/models and GET /v1/models/{id} (the one loaded model, named by its folder).

multipart form, OpenAI's fields:
    file             the audio (required): any format soundfile reads
    response_format  json (default), text, srt, vtt or verbose_json (segments, with every
                     field Whisper gives one, `formats.segment_records`, and words)
    language         only "en" (the model is English)
    hotwords         words and phrases to favour, comma- or line-separated, each with an
                     optional ":boost" ("Nautilus, Captain Nemo:8"; asr/hotwords.py)
    prompt           as Whisper reads it, a vocabulary hint: its words of 4 letters or
                     more become hotwords (boost PROMPT_BOOST), beside `hotwords`
    raw              true: the text is the normalized spoken words ("mister smith paid
                     twenty dollars"); false: written ("Mr. Smith paid $20."); unset: the
                     server's own (written, unless `asr serve --raw`)
    keywords[]       more hotwords, one entry each (OpenAI's biasing list)
    stream           true: server-sent events (json or text only): one
                     `transcript.text.delta` per written word, then `transcript.text.done`
                     with the whole text. A file is decoded whole first, so the events
                     come together; text while audio arrives is /v1/stream's
    include[]        "logprobs" (json or a stream only): per spoken word its log-probability
                     (the log of its confidence), as {"token", "logprob", "bytes"}
    chunking_strategy  "auto" or server_vad (its numbers checked): long recordings are
                     split at pauses either way, by `inference/segment.py`'s own rule
    languages[]      each "en" (with any region), as `language`
    model, temperature, timestamp_granularities[]   accepted and ignored: one model is
                     loaded, decoding is deterministic, and verbose_json always has
                     segments and words

Each upload is copied to a temporary file of the server's own naming, removed when the
request ends; long recordings are split at pauses as `asr transcribe` splits them; the
recognition waits in the server's queue (`Server.queue`). Undecodable audio gets asr.audio's
own message, with the client's file name in place of the temporary path.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from asr.audio import AudioError, audio_info
from asr.decode import DecodingOptions
from asr.hotwords import MAX_LIST_CHARS, PROMPT_BOOST, HotwordError, prompt_hints, split_list
from asr.inference import formats
from asr.inference.recognizer import Recognizer, Transcript
from asr.inference.segment import SegmentConfig
from asr.serve.config import ServeConfig
from asr.serve.errors import ApiError
from asr.serve.server import Protocol, QueueFull, Server, model_name
from asr.serve.streaming import is_english

__all__ = ["MODELS_URL", "PROMPT_BOOST", "PROTOCOL", "RESPONSE_FORMATS", "URL", "model_id"]

URL = "/v1/audio/transcriptions"
MODELS_URL = "/v1/models"
# chunking_strategy's server_vad numbers: checked against OpenAI's ranges, then the pause
# splitter's own rule applies (module docstring)
_VAD_RANGES = {
    "threshold": (0.0, 1.0),
    "prefix_padding_ms": (0.0, 10_000.0),
    "silence_duration_ms": (0.0, 10_000.0),
}
_INCLUDES = ("logprobs",)
_STREAMED_FORMATS = ("json", "text")  # what stream=true and include[]=logprobs go with
# Fields of OpenAI's transcription request that change nothing here (see the module docstring).
_IGNORED_FIELDS = ("model", "temperature")
_IGNORED_FIELDS += ("timestamp_granularities", "timestamp_granularities[]")
_FIELDS = ("file", "response_format", "language", "hotwords", "prompt", "raw", "stream")
_FIELDS += ("keywords[]", "include[]", "languages[]", "chunking_strategy")
_FIELDS += tuple(f"chunking_strategy[{key}]" for key in ("type", *_VAD_RANGES))
_FIELDS += _IGNORED_FIELDS
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}  # a form field's text
_WHERE = "field 'hotwords'"  # how errors name the hotwords field
_STARTED = int(time.time())  # a model's `created` when it has no file to date it by


# --- responses ---------------------------------------------------------------------------


def _json(t: Transcript, _recognizer: Recognizer) -> Response:
    return JSONResponse({"text": t.text})


def _logprobs(t: Transcript) -> list[dict]:
    """OpenAI's logprobs: per spoken word, the log of its confidence."""
    return [
        {
            "token": w.word,
            "logprob": round(math.log(max(w.confidence, 1e-10)), 4),
            "bytes": list(w.word.encode()),
        }
        for w in t.words
    ]


def _events(t: Transcript, logprobs: bool) -> Iterator[bytes]:
    """stream=true: one transcript.text.delta per written word (its leading space
    included, so the deltas join to the text), then transcript.text.done."""
    pieces = t.text.split(" ")
    for i, piece in enumerate(pieces):
        yield _event({"type": "transcript.text.delta", "delta": piece if i == 0 else " " + piece})
    done = {"type": "transcript.text.done", "text": t.text}
    yield _event(done | ({"logprobs": _logprobs(t)} if logprobs else {}))


def _event(data: dict) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def _respond(t: Transcript, recognizer: Recognizer, params: _Params) -> Response:
    """The answer in the request's format: as a stream of events, with logprobs, or plain."""
    logprobs = "logprobs" in params.include
    if params.stream:
        return StreamingResponse(_events(t, logprobs), media_type="text/event-stream")
    if logprobs:  # json only (_parse_form)
        return JSONResponse({"text": t.text, "logprobs": _logprobs(t)})
    return RESPONSE_FORMATS[params.response_format].respond(t, recognizer)


def _text(t: Transcript, _recognizer: Recognizer) -> Response:
    return PlainTextResponse(formats.to_txt(t.text))


def _srt(t: Transcript, _recognizer: Recognizer) -> Response:
    return PlainTextResponse(formats.to_srt(t.written_words, t.text, t.duration))


def _vtt(t: Transcript, _recognizer: Recognizer) -> Response:
    vtt = formats.to_vtt(t.written_words, t.text, t.duration)
    return PlainTextResponse(vtt, media_type="text/vtt")


def _verbose_json(t: Transcript, recognizer: Recognizer) -> Response:
    """OpenAI's verbose_json: segments are cues of the written words, with Whisper's
    per-segment fields (`formats.segment_records` says what each means here); words are
    the timed spoken words, with their confidence too."""
    record = {
        "task": "transcribe",
        "language": "english",
        "duration": round(t.duration, 3),
        "text": t.text,
        "segments": formats.segment_records(t, recognizer.vocab),
        "words": [w.to_dict() for w in t.words],
    }
    return JSONResponse(record)


@dataclass(frozen=True)
class ResponseFormat:
    respond: Callable[[Transcript, Recognizer], Response]
    timed: bool  # needs timed words (recognized with word_timestamps)


# OpenAI's response formats; the subtitles are the CLI's own formats (formats.FORMATS).
RESPONSE_FORMATS = {
    "json": ResponseFormat(_json, False),
    "text": ResponseFormat(_text, formats.FORMATS["txt"].timed),
    "srt": ResponseFormat(_srt, formats.FORMATS["srt"].timed),
    "vtt": ResponseFormat(_vtt, formats.FORMATS["vtt"].timed),
    "verbose_json": ResponseFormat(_verbose_json, True),
}


# --- the request --------------------------------------------------------------------------


@dataclass
class _Params:
    upload: UploadFile
    response_format: str
    name: str  # the client's file name, for messages only: never a path here
    options: DecodingOptions  # the server's, with the hotwords and prompt fields' hotwords
    stream: bool = False  # server-sent events
    include: tuple[str, ...] = ()  # "logprobs"

    @property
    def timed(self) -> bool:
        """Recognized with word times: the format needs them, or the logprobs do."""
        return RESPONSE_FORMATS[self.response_format].timed or bool(self.include)


def _request_options(form: FormData, recognizer: Recognizer, limit: int) -> DecodingOptions:
    """The options of a request: its hotwords field, its prompt as hints (words of 4
    letters or more, boost PROMPT_BOOST) and its raw field, through the one door
    (`Recognizer.options`); a HotwordError is a 400 naming the field."""
    raw = _raw_field(form)
    prompt = str(form.get("prompt") or "")
    if len(prompt) > MAX_LIST_CHARS:
        raise ApiError(400, f"field 'prompt' is longer than {MAX_LIST_CHARS} characters", "prompt")
    hints = prompt_hints(prompt)
    text, keywords = str(form.get("hotwords") or ""), form.getlist("keywords[]")
    # keywords[] join the field's entries (a text over its limit goes as it is, refused)
    joined = keywords and len(text) <= MAX_LIST_CHARS
    hotwords = [*split_list(text), *keywords] if joined else text
    try:
        return recognizer.options(hotwords, limit, hints, where=_WHERE, raw=raw)
    except HotwordError as err:
        raise ApiError(400, str(err), "hotwords") from None


def _raw_field(form: FormData, name: str = "raw") -> bool | None:
    """A true-or-false field (or 1, 0); None when absent or empty."""
    text = str(form.get(name) or "").strip().lower()
    if not text:
        return None
    if text not in _BOOLEANS:
        raise ApiError(400, f"field {name!r} must be true or false, got {text[:20]!r}", name)
    return _BOOLEANS[text]


def _check_language(language: str, field: str) -> None:
    """English, with any region (en, EN, en-US, en_GB); else a 400 naming the field."""
    if not is_english(language):
        message = f"language {language!r} is not supported: this model transcribes English (en)"
        raise ApiError(400, message, field)


def _check_chunking(form: FormData) -> None:
    """chunking_strategy: "auto", or server_vad with numbers in OpenAI's ranges."""
    whole = form.get("chunking_strategy")
    kind = form.get("chunking_strategy[type]")
    if whole is not None and (whole != "auto" or kind is not None):
        message = f"chunking_strategy must be 'auto' or a server_vad object, got {whole[:20]!r}"
        raise ApiError(400, message, "chunking_strategy")
    numbers = {k: form.get(f"chunking_strategy[{k}]") for k in _VAD_RANGES}
    given = {k: v for k, v in numbers.items() if v is not None}
    if kind is None and not given:
        return
    if kind != "server_vad":
        message = f"chunking_strategy type must be 'server_vad', got {kind!r}"
        raise ApiError(400, message, "chunking_strategy")
    for key, value in given.items():
        low, high = _VAD_RANGES[key]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not low <= number <= high:
            message = f"chunking_strategy {key} must be a number in [{low:g}, {high:g}]"
            raise ApiError(400, f"{message}, got {value[:20]!r}", "chunking_strategy")


def _parse_form(form: FormData, recognizer: Recognizer, max_hotwords: int) -> _Params:
    """Validate the request fields (names, response_format, language, the file part)."""
    for key, value in form.multi_items():
        if key not in _FIELDS:
            raise ApiError(400, f"unknown field {key!r}; accepted: {', '.join(_FIELDS)}", key)
        if key != "file" and not isinstance(value, str):
            raise ApiError(400, f"field {key!r} must be text, not a file", key)
    upload = form.get("file")
    if upload is None:
        raise ApiError(400, "missing field 'file': the audio, as a multipart file part", "file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "field 'file' must be a file part (with a filename)", "file")
    response_format = str(form.get("response_format") or "json")
    if response_format not in RESPONSE_FORMATS:
        choices = ", ".join(RESPONSE_FORMATS)
        message = f"response_format {response_format!r} is not one of {choices}"
        raise ApiError(400, message, "response_format")
    _check_language(str(form.get("language") or "en"), "language")
    for language in form.getlist("languages[]"):
        _check_language(str(language), "languages")
    _check_chunking(form)
    include = tuple(dict.fromkeys(str(v) for v in form.getlist("include[]")))
    unknown = [v for v in include if v not in _INCLUDES]
    if unknown:
        message = f"include[] {unknown[0][:20]!r} is not one of {', '.join(_INCLUDES)}"
        raise ApiError(400, message, "include")
    stream = bool(_raw_field(form, "stream"))
    if (stream or include) and response_format not in _STREAMED_FORMATS:
        asked = "stream=true" if stream else "include[]=logprobs"
        message = f"{asked} goes with response_format json or text, not {response_format}"
        raise ApiError(400, message, "response_format")
    name = PurePath(upload.filename or "").name or "upload"
    options = _request_options(form, recognizer, max_hotwords)
    return _Params(upload, response_format, name, options, stream, include)


@contextmanager
def _upload_file(upload_dir: str | None) -> Iterator[Path]:
    """A fresh temporary file of the server's naming, removed on exit whatever happened."""
    fd, name = tempfile.mkstemp(prefix="asr-upload-", dir=upload_dir)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _copy_upload(upload: UploadFile, path: Path) -> int:
    """Copy the spooled upload to `path`; return its size in bytes."""
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, 2**20)
    return path.stat().st_size


def _recognize(
    recognizer: Recognizer,
    path: Path,
    options: DecodingOptions | None,
    word_timestamps: bool,
    config: ServeConfig,
) -> tuple[Transcript, float]:
    """One file through the public Recognizer API (a worker thread); (transcript, seconds)."""
    started = time.perf_counter()
    segment = SegmentConfig(max_seconds=config.max_seconds)
    (transcript,) = recognizer.transcribe(
        [path], options, config.batch_size, word_timestamps=word_timestamps, segment=segment
    )
    return transcript, time.perf_counter() - started


def _client_message(err: AudioError, path: Path, name: str) -> str:
    """asr.audio's message with the client's file name where it says the temporary path."""
    return str(err).replace(str(path), name)


async def _run_recognition(server: Server, path: Path, params: _Params, deadline: float):
    """Queue the recognition and wait for it until `deadline` (event-loop time)."""
    args = (server.recognizer, path, params.options, params.timed, server.config)
    try:
        future = server.queue.submit(_recognize, *args)
    except QueueFull as err:
        raise ApiError(503, f"server busy ({err}); try again later") from err
    remaining = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        # On timeout, a recognition still waiting is cancelled; a running one finishes
        # unobserved (a thread cannot be stopped), holding its worker until then.
        return await asyncio.wait_for(asyncio.wrap_future(future), remaining)
    except TimeoutError as err:
        limit = server.config.timeout
        raise ApiError(504, f"{params.name}: not transcribed within {limit:g} s") from err
    except AudioError as err:
        raise ApiError(400, _client_message(err, path, params.name), "file") from err


def _check_duration(path: Path, name: str, limit: float) -> None:
    """413 for audio that decodes to more than `limit` seconds, read from its header before
    any decoding (a 12 KB file can claim hours); 400 for a header that cannot be read."""
    try:
        seconds = audio_info(path).duration
    except AudioError as err:
        raise ApiError(400, _client_message(err, path, name), "file") from err
    if seconds > limit:
        message = f"{name}: {seconds:.0f} s of audio; this server transcribes at most {limit:g} s"
        raise ApiError(413, message + " (asr serve --max-audio-seconds)", "file")


async def transcriptions(server: Server, request: Request) -> Response:
    if server.queue.full:  # refuse before reading the upload
        raise ApiError(503, "server busy: every worker and queue place is taken; try later")
    content_type = request.headers.get("content-type", "")
    # A media type is case-insensitive (RFC 9110 8.3.1): "Multipart/Form-Data" is one.
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise ApiError(400, f"expected a multipart/form-data body, got {content_type!r}")
    async with request.form(max_files=1, max_fields=len(_FIELDS)) as form:
        params = _parse_form(form, server.recognizer, server.config.max_hotwords)
        with _upload_file(server.config.upload_dir) as path:
            size = await run_in_threadpool(_copy_upload, params.upload, path)
            if size == 0:
                raise ApiError(400, f"{params.name}: the uploaded file is empty", "file")
            _check_duration(path, params.name, server.config.max_audio_seconds)
            # --timeout counts from here: a slow upload is --read-timeout's to judge
            deadline = asyncio.get_running_loop().time() + server.config.timeout
            transcript, seconds = await _run_recognition(server, path, params, deadline)
    request.state.audio_seconds = transcript.duration
    request.state.recognition_seconds = seconds
    return _respond(transcript, server.recognizer, params)


# --- the models ---------------------------------------------------------------------------


def model_record(server: Server) -> dict:
    """The loaded model as OpenAI's Model object: named by its folder ("en-phones"),
    created when its folder (file) was last written, owned by this server."""
    source = Path(server.recognizer.source)
    try:
        created = int(source.stat().st_mtime)
    except OSError:  # not a path (a recognizer built in memory): when the server started
        created = _STARTED
    return {"id": model_id(server), "object": "model", "created": created, "owned_by": "asr"}


def model_id(server: Server) -> str:
    """The name clients know the loaded model by (`server.model_name`)."""
    return model_name(server.recognizer)


async def list_models(server: Server, _request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [model_record(server)]})


async def retrieve_model(server: Server, request: Request) -> Response:
    name = request.path_params["model"]
    if name != model_id(server):
        message = f"the model {name!r} does not exist; this server has {model_id(server)!r}"
        raise ApiError(404, message, "model")
    return JSONResponse(model_record(server))


def routes(server: Server) -> list[BaseRoute]:
    return [
        Route(URL, functools.partial(transcriptions, server), methods=["POST"]),
        Route(MODELS_URL, functools.partial(list_models, server), methods=["GET"]),
        Route(
            MODELS_URL + "/{model:path}", functools.partial(retrieve_model, server), methods=["GET"]
        ),
    ]


PROTOCOL = Protocol(routes)
