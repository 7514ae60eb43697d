"""Synthetic speech corpora from text, with the speech synthesizers Debian ships or hibari.

    asr data synth --text book.txt --out data/synth/demo --num 500
    asr data synth --text book.txt --out data/synth/hibari --voices hibari:heart

Engines run as subprocesses: espeak-ng (accents x voice variants), flite (kal16, awb, rms,
slt) and festival (kal_diphone, cmu_us_slt_arctic_hts). hibari (the PyPI package hibari-tts,
`pip install '.[synth]'`; opt-in, not in VOICES) is a small neural voice run in-process:
"heart" is in its wheel, its other voices are downloaded on first use. Each utterance gets
one voice and a speaking rate and pitch drawn from a generator seeded by (seed, utterance
index), so a corpus is reproducible and can be extended or resumed: an utterance whose WAV
is already written is not synthesized again. Output is 16 kHz mono 16-bit WAV with a manifest.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import SAMPLE_RATE
from asr.config import option
from asr.manifest import Utterance, write_dropped, write_manifest
from asr.text import Vocabulary, normalize_text
from asr.usererror import UserError

__all__ = [
    "ENGINES",
    "VOICES",
    "CorpusReport",
    "SynthConfig",
    "SynthError",
    "SynthResult",
    "check_engines",
    "make_corpus",
    "read_sentences",
    "synthesize_corpus",
    "write_corpus",
]

log = logging.getLogger(__name__)


class SynthError(UserError, RuntimeError):
    """A synthesizer that is missing or cannot produce speech."""


@dataclass(frozen=True)
class Engine:
    binary: str  # program run as a subprocess ("": a Python package run in-process)
    package: str  # Debian package(s) providing it, or the PyPI package
    install: str  # how to install it


ENGINES = {
    "espeak-ng": Engine("espeak-ng", "espeak-ng", "apt-get install espeak-ng"),
    "flite": Engine("flite", "flite", "apt-get install flite"),
    "festival": Engine("text2wave", "festival", "apt-get install festival"),
    "hibari": Engine("", "hibari-tts", "pip install '.[synth]'"),
}
# Festival voices come in their own packages.
_FESTIVAL_PACKAGES = {
    "kal_diphone": "festvox-kallpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}
# flite's default f0 mean per voice (Hz), scaled by the drawn pitch factor.
_FLITE_F0 = {"kal16": 105.0, "awb": 110.0, "rms": 95.0, "slt": 170.0}

# "engine:voice"; espeak-ng voices are "<accent>+<variant>".
VOICES = (
    "espeak-ng:en-us+m1",
    "espeak-ng:en-us+f3",
    "espeak-ng:en-gb+m3",
    "espeak-ng:en-gb+f2",
    "espeak-ng:en-gb-scotland+m2",
    "espeak-ng:en-gb-x-rp+f4",
    "espeak-ng:en-029+m4",
    "espeak-ng:en-gb-x-gbclan+m7",
    "flite:kal16",
    "flite:awb",
    "flite:rms",
    "flite:slt",
    "festival:kal_diphone",
    "festival:cmu_us_slt_arctic_hts",
)


@dataclass(frozen=True)
class SynthConfig:
    voices: tuple[str, ...] = option(VOICES, "engine:voice names to draw from", nargs="+")
    seed: int = option(0, "seeds sentence choice, voice, rate, pitch")
    rate_range: tuple[float, float] = (0.85, 1.2)  # speaking-rate factor, uniform
    pitch_range: tuple[float, float] = (0.85, 1.15)  # pitch factor, uniform (not festival, hibari)
    silence_dbfs: float = -50.0  # output peaking below this counts as silent and is skipped
    timeout: float = 60.0  # seconds one synthesizer call may take
    jobs: int = option(0, "parallel workers (0: one per core)")


@dataclass(frozen=True)
class SentencePick:
    """Which sentences of the text files are spoken."""

    num: int = option(0, "sentences to speak, drawn with the seed (0: all)")
    min_words: int = option(3, "shorter sentences are left out")
    max_words: int = option(25, "longer sentences are left out")


@dataclass(frozen=True)
class Job:
    index: int  # sentence number: names the file and seeds the draws
    text: str  # normalized sentence, spoken and used as transcript
    voice: str  # "engine:voice"
    rate: float  # speaking-rate factor
    pitch: float  # pitch factor
    path: str  # output WAV
    noise_seed: int = 0  # seeds a neural voice's noise component (hibari)


@dataclass
class SynthResult:
    utterances: list[Utterance]  # written (or found from an earlier run), by index
    skipped: list[tuple[Utterance, str]]  # (sentence, reason) the engines could not speak
    synthesized: int  # utterances made by this run (the rest were already there)


# --- sentences -------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def _paragraphs(text: str) -> Iterable[str]:
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        if block:
            yield block


def read_sentences(
    paths: Sequence[str | Path], min_words: int = 3, max_words: int = 25
) -> tuple[list[str], list[tuple[str, str]]]:
    """Normalized, de-duplicated sentences of text files, and (sentence, reason) for each left
    out: too short, too long, or with letters the English vocabulary cannot spell."""
    vocab = Vocabulary.english()
    kept, seen, rejected = [], set(), []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        for paragraph in _paragraphs(text):
            for raw in _SENTENCE_END.split(paragraph):
                sentence = normalize_text(raw)
                words = len(sentence.split())
                if not sentence or sentence in seen:
                    continue
                seen.add(sentence)
                if vocab.find_unknown(sentence):
                    rejected.append((raw, f"characters {sorted(vocab.find_unknown(sentence))}"))
                elif words < min_words:
                    rejected.append((raw, f"{words} word(s) < {min_words}"))
                elif words > max_words:
                    rejected.append((raw, f"{words} words > {max_words}"))
                else:
                    kept.append(sentence)
    return kept, rejected


# --- engines ---------------------------------------------------------------------------------


def _command(job: Job, text_file: str, wav: str) -> list[str]:
    engine, voice = job.voice.split(":", 1)
    if engine == "espeak-ng":
        speed, pitch = round(175 * job.rate), round(min(99, max(0, 50 + 100 * (job.pitch - 1))))
        return [
            "espeak-ng",
            "-v",
            voice,
            "-s",
            str(speed),
            "-p",
            str(pitch),
            "-f",
            text_file,
            "-w",
            wav,
        ]
    if engine == "flite":
        f0 = _FLITE_F0.get(voice, 110.0) * job.pitch
        return [
            "flite",
            "-voice",
            voice,
            "--setf",
            f"duration_stretch={1 / job.rate:.3f}",
            "--setf",
            f"int_f0_target_mean={f0:.1f}",
            "-f",
            text_file,
            "-o",
            wav,
        ]
    if engine == "festival":
        return [
            "text2wave",
            "-eval",
            f"(voice_{voice})",
            "-eval",
            f"(Parameter.set 'Duration_Stretch {1 / job.rate:.3f})",
            "-o",
            wav,
            text_file,
        ]
    raise SynthError(f"unknown engine {engine!r} in voice {job.voice!r}; engines: {list(ENGINES)}")


_HIBARI: dict = {}  # voice -> hibari.Hibari, loaded once per worker


def _hibari(voice: str):
    """The hibari model of `voice` (its ONNX session and G2P). Raises SynthError."""
    if voice not in _HIBARI:
        try:
            from hibari import Hibari
            from hibari.voices import VOICES as HIBARI_VOICES
        except ImportError as err:
            raise SynthError(
                "hibari: the Python package hibari-tts is not installed: pip install '.[synth]'"
            ) from err
        if voice not in HIBARI_VOICES:
            raise SynthError(f"hibari: unknown voice {voice!r}; voices: {list(HIBARI_VOICES)}")
        try:
            _HIBARI[voice] = Hibari(voice=voice, threads=1)  # non-bundled voices: downloaded
        except (RuntimeError, OSError) as err:
            raise SynthError(f"hibari:{voice}: {err}") from err
    return _HIBARI[voice]


def _run_hibari(job: Job) -> tuple[np.ndarray, int]:
    """Speak job.text in-process: (waveform (S,) float32 in [-1, 1], 24000). No pitch control;
    job.rate is hibari's speed (durations divided by it)."""
    tts = _hibari(job.voice.split(":", 1)[1])
    try:
        waveform = tts(job.text, speed=job.rate, seed=job.noise_seed)
    except Exception as err:  # the G2P or the ONNX session on odd text
        raise SynthError(f"{job.voice}: {type(err).__name__}: {err}") from err
    return np.asarray(waveform, dtype=np.float32), int(tts.sample_rate)


def _run_engine(job: Job, timeout: float) -> tuple[np.ndarray, int]:
    """Speak job.text: (mono waveform (S,), its sample rate). Raises SynthError."""
    if job.voice.startswith("hibari:"):
        return _run_hibari(job)  # in-process: `timeout` does not apply
    with tempfile.TemporaryDirectory(prefix="asr-synth-") as tmp:
        text_file, wav = os.path.join(tmp, "text.txt"), os.path.join(tmp, "out.wav")
        Path(text_file).write_text(job.text + "\n", encoding="utf-8")
        try:
            proc = subprocess.run(
                _command(job, text_file, wav), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise SynthError(f"{job.voice}: no output within {timeout:.0f} s") from err
        if proc.returncode != 0 or not os.path.isfile(wav):
            stderr = proc.stderr.decode(errors="replace").strip().splitlines()
            raise SynthError(f"{job.voice}: exit {proc.returncode}: {' '.join(stderr[-2:])}")
        try:
            samples, rate = sf.read(wav, dtype="float32", always_2d=True)
        except Exception as err:  # a broken WAV from the engine
            raise SynthError(f"{job.voice}: unreadable output ({err})") from err
    return samples.mean(axis=1), int(rate)  # (S, C) -> (S,)


_RESAMPLERS: dict = {}  # rate -> torchaudio.transforms.Resample


def _to_16k(waveform: np.ndarray, rate: int) -> np.ndarray:
    """(S,) at `rate` -> (S * 16000 / rate,); the same filter as asr.audio.resample, with its
    kernel built once per worker (building it costs more than applying it)."""
    import torch
    import torchaudio

    if rate == SAMPLE_RATE:
        return waveform
    if rate not in _RESAMPLERS:
        _RESAMPLERS[rate] = torchaudio.transforms.Resample(rate, SAMPLE_RATE)
    with torch.no_grad():
        return _RESAMPLERS[rate](torch.from_numpy(np.ascontiguousarray(waveform))).numpy()


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # the parallelism is across utterances, one per core
    _HIBARI.clear()  # a worker builds its own ONNX sessions rather than use forked ones


def _synthesize(args: tuple[Job, SynthConfig]) -> tuple[Job, float, str]:
    """Make one utterance: (job, duration in seconds, "" or the reason it was skipped)."""
    job, cfg = args
    out = Path(job.path)
    if out.is_file():
        return job, sf.info(str(out)).duration, ""
    try:
        waveform, rate = _run_engine(job, cfg.timeout)
    except SynthError as err:
        return job, 0.0, str(err)
    waveform = _to_16k(waveform, rate)  # (S,) -> (S * 16000 / rate,)
    if waveform.size == 0:
        return job, 0.0, f"{job.voice}: empty output"
    peak = float(np.abs(waveform).max())
    if peak == 0 or 20 * math.log10(peak) < cfg.silence_dbfs:
        return job, 0.0, f"{job.voice}: silent output (peak below {cfg.silence_dbfs} dBFS)"
    waveform = waveform / max(1.0, peak)  # resampling can overshoot full scale
    tmp = out.with_name(out.stem + ".tmp.wav")
    sf.write(tmp, waveform, SAMPLE_RATE, subtype="PCM_16")
    tmp.replace(out)  # a WAV with its final name is complete
    return job, len(waveform) / SAMPLE_RATE, ""


def check_engines(voices: Iterable[str], timeout: float = 60.0) -> None:
    """Speak one word with each voice; SynthError naming the package to install if any fails."""
    for voice in voices:
        engine, _, name = voice.partition(":")
        if engine not in ENGINES:
            raise SynthError(
                f"unknown engine {engine!r} in voice {voice!r}; engines: {list(ENGINES)}"
            )
        spec = ENGINES[engine]
        if spec.binary and shutil.which(spec.binary) is None:
            raise SynthError(
                f"{spec.binary} not found: install the Debian package {spec.package} "
                f"({spec.install})"
            )
        try:
            _run_engine(Job(0, "test", voice, 1.0, 1.0, ""), timeout)
        except SynthError as err:
            if not spec.binary:
                raise  # in-process: the error names the package or the voice
            package = _FESTIVAL_PACKAGES.get(name, spec.package)
            raise SynthError(
                f"voice {voice} does not work ({err}); is the Debian package {package} installed?"
            ) from err


# --- corpus ----------------------------------------------------------------------------------


def plan_jobs(sentences: Sequence[str], out_dir: Path, cfg: SynthConfig) -> list[Job]:
    """One job per sentence; its voice, rate, pitch and noise seed depend only on (seed, index)."""
    jobs = []
    for index, text in enumerate(sentences):
        rng = random.Random(f"{cfg.seed}:{index}")
        voice = cfg.voices[rng.randrange(len(cfg.voices))]
        rate, pitch = rng.uniform(*cfg.rate_range), rng.uniform(*cfg.pitch_range)
        noise_seed = rng.getrandbits(32)  # drawn last: the earlier draws stay as they were
        name = f"{index:07d}_{voice.replace(':', '_').replace('+', '_')}"
        path = str(out_dir / "wavs" / f"{name}.wav")
        jobs.append(Job(index, text, voice, rate, pitch, path, noise_seed))
    return jobs


def synthesize_corpus(
    sentences: Sequence[str], out_dir: str | Path, cfg: SynthConfig
) -> SynthResult:
    """Speak every sentence into `<out_dir>/wavs/`, in parallel; resumes an earlier run."""
    out_dir = Path(out_dir).resolve()  # manifests hold absolute or manifest-relative paths
    if not cfg.voices:
        raise SynthError("no voices selected")
    check_engines(sorted(set(cfg.voices)), cfg.timeout)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(sentences, out_dir, cfg)
    already = sum(Path(job.path).is_file() for job in jobs)
    tasks = [(job, cfg) for job in jobs]
    with Pool(cfg.jobs or os.cpu_count() or 1, initializer=_init_worker) as pool:
        results = sorted(
            pool.imap_unordered(_synthesize, tasks, chunksize=4), key=lambda r: r[0].index
        )
    utterances, skipped = [], []
    for job, duration, reason in results:
        utt = Utterance(job.path, duration, job.text, Path(job.path).stem, job.voice)
        if reason:
            skipped.append((utt, reason))
        else:
            utterances.append(utt)
    return SynthResult(utterances, skipped, len(jobs) - already - len(skipped))


def write_corpus(result: SynthResult, out_dir: str | Path) -> tuple[Path, Path | None]:
    """`manifest.jsonl`, and `skipped.tsv` when some sentences could not be spoken."""
    out_dir = Path(out_dir)
    write_manifest(out_dir / "manifest.jsonl", result.utterances)
    if not result.skipped:
        return out_dir / "manifest.jsonl", None
    write_dropped(out_dir / "skipped.tsv", result.skipped)
    return out_dir / "manifest.jsonl", out_dir / "skipped.tsv"


@dataclass
class CorpusReport:
    usable: int  # sentences that passed the length and spelling filters
    rejected: int  # sentences they left out
    result: SynthResult  # what was spoken (and what could not be)
    seconds: float  # wall time of the synthesis
    manifest: Path  # manifest.jsonl written
    skipped_file: Path | None  # skipped.tsv, when some sentences could not be spoken

    @property
    def summary(self) -> str:
        """What `asr data synth` prints: sentences used, utterances and hours, each sentence
        that could not be spoken and why."""
        result, hours = self.result, sum(u.duration for u in self.result.utterances) / 3600
        now = f"{result.synthesized} synthesized now, in {self.seconds:.1f} s"
        lines = [
            f"{self.usable} usable sentences; {self.rejected} left out by length or spelling",
            f"{self.manifest}: {len(result.utterances)} utterances, {hours:.3f} h ({now})",
            *(f"skipped {utt.id}: {reason}: {utt.text!r}" for utt, reason in result.skipped),
        ]
        if self.skipped_file:
            lines.append(f"skipped {len(result.skipped)}: {self.skipped_file}")
        return "\n".join(lines)


def make_corpus(
    texts: Sequence[str | Path],
    out_dir: str | Path,
    cfg: SynthConfig = SynthConfig(),
    pick: SentencePick = SentencePick(),
) -> CorpusReport:
    """`asr data synth`: the sentences of text files (`read_sentences`), `pick.num` of them
    drawn with `cfg.seed` (0: all), spoken into `out_dir` (`synthesize_corpus`, resumable)
    and written as its manifest (`write_corpus`)."""
    sentences, rejected = read_sentences(texts, pick.min_words, pick.max_words)
    num = pick.num
    usable = len(sentences)
    if num and num < len(sentences):
        chosen = sorted(random.Random(cfg.seed).sample(range(len(sentences)), num))
        sentences = [sentences[i] for i in chosen]
    start = time.monotonic()
    result = synthesize_corpus(sentences, out_dir, cfg)
    elapsed = time.monotonic() - start
    manifest, skipped = write_corpus(result, out_dir)
    return CorpusReport(usable, len(rejected), result, elapsed, manifest, skipped)
