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
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from asr.audio import AudioError, audio_info
from asr.decode import DecodingOptions
from asr.hotwords import MAX_LIST_CHARS, Hotword, HotwordError
from asr.inference import formats
from asr.inference.recognizer import Recognizer, Transcript
from asr.inference.segment import SegmentConfig
from asr.serve.config import ServeConfig
from asr.serve.errors import ApiError
from asr.serve.server import Protocol, QueueFull, Server, model_name
from asr.text import normalize_text

__all__ = ["MODELS_URL", "PROMPT_BOOST", "PROTOCOL", "RESPONSE_FORMATS", "URL", "model_id"]

URL = "/v1/audio/transcriptions"
MODELS_URL = "/v1/models"
# Fields of OpenAI's transcription request that change nothing here (see the module docstring).
_IGNORED_FIELDS = ("model", "temperature")
_IGNORED_FIELDS += ("timestamp_granularities", "timestamp_granularities[]")
_FIELDS = ("file", "response_format", "language", "hotwords", "prompt", "raw")
_FIELDS += _IGNORED_FIELDS
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}  # a form field's text
PROMPT_BOOST = 3.0  # per word of a prompt's hotwords (their own list's default is higher)
_PROMPT_MIN_LETTERS = 4  # shorter prompt words ("the", "and") are not hotwords
_LANGUAGES = ("en",)
_WHERE = "field 'hotwords'"  # how errors name the hotwords field
_STARTED = int(time.time())  # a model's `created` when it has no file to date it by


# --- responses ---------------------------------------------------------------------------


def _json(t: Transcript, _recognizer: Recognizer) -> Response:
    return JSONResponse({"text": t.text})


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


def _request_options(form: FormData, recognizer: Recognizer, limit: int) -> DecodingOptions:
    """The options of a request: its hotwords field, its prompt as hints (words of 4
    letters or more, boost PROMPT_BOOST) and its raw field, through the one door
    (`Recognizer.options`); a HotwordError is a 400 naming the field."""
    raw = _raw_field(form)
    prompt = str(form.get("prompt") or "")
    if len(prompt) > MAX_LIST_CHARS:
        raise ApiError(400, f"field 'prompt' is longer than {MAX_LIST_CHARS} characters", "prompt")
    hinted = [w for w in normalize_text(prompt).split() if len(w) >= _PROMPT_MIN_LETTERS]
    hints = [Hotword((w,), PROMPT_BOOST) for w in dict.fromkeys(hinted)]
    try:
        hotwords = str(form.get("hotwords") or "")
        return recognizer.options(hotwords, limit, hints, where=_WHERE, raw=raw)
    except HotwordError as err:
        raise ApiError(400, str(err), "hotwords") from None


def _raw_field(form: FormData) -> bool | None:
    """The raw field: true or false (or 1, 0); None when absent or empty."""
    text = str(form.get("raw") or "").strip().lower()
    if not text:
        return None
    if text not in _BOOLEANS:
        raise ApiError(400, f"field 'raw' must be true or false, got {text[:20]!r}", "raw")
    return _BOOLEANS[text]


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
    language = str(form.get("language") or "en")
    if language.lower() not in _LANGUAGES:
        message = f"language {language!r} is not supported: this model transcribes English (en)"
        raise ApiError(400, message, "language")
    name = PurePath(upload.filename or "").name or "upload"
    options = _request_options(form, recognizer, max_hotwords)
    return _Params(upload, response_format, name, options)


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
    timed = RESPONSE_FORMATS[params.response_format].timed
    args = (server.recognizer, path, params.options, timed, server.config)
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
    return RESPONSE_FORMATS[params.response_format].respond(transcript, server.recognizer)


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
