"""What several test modules use: paths, the sample, hand-built log-probs, the tone oracle,
subtitle parsers, tiny checkpoints, fake corpora and voices. Tests import it by name
(`from helpers import ...`); conftest.py holds the fixtures."""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.checkpoint import inference_payload, save_checkpoint
from asr.features import FeatureConfig
from asr.inference.recognizer import Recognizer
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary, normalize_text

RATE = 16_000

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "sample.wav"  # flite's slt voice, made with the line below
SAMPLE_TEXT = (  # flite -voice slt -t "<this, capitalized and punctuated>" -o sample.wav
    "the old man walked slowly along the river thinking of the long winter that was coming"
)
LOCAL = "http://127.0.0.1:8000"  # the server's default address, a Host it answers
MODEL_FOLDER_FILES = {"model.pt", "model.onnx", "decoding.json", "lm/lm.bin", "lm/lexicon.txt"}


def folder_file_sizes(folder: Path) -> dict[str, int]:
    """Size in bytes of every file under `folder`, by its path relative to it."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()
    }


VOCAB = Vocabulary.english()
needs_kenlm = pytest.mark.skipif(
    shutil.which("lmplz") is None or shutil.which("build_binary") is None,
    reason="KenLM tools missing (scripts/install_kenlm.sh)",
)


def peaky_log_probs(
    spans: list[dict[str, float]], frames_per_token: int = 3, floor: float = -12.0
) -> torch.Tensor:
    """(T, V) log-probs: per span, one frame with the given {char: prob} mixture, then blanks.

    A span {"a": 0.6, "o": 0.4} is an acoustically ambiguous character; " " is a word
    boundary. Every other frame is blank, so repeats stay separate tokens.
    """
    rows = []
    for span in spans:
        emit = torch.full((len(VOCAB),), floor)
        for char, prob in span.items():
            emit[VOCAB.encode(char)[0]] = torch.tensor(prob).log()
        rows.append(emit)
        blank = torch.full((len(VOCAB),), floor)
        blank[VOCAB.blank_id] = 0.0
        rows += [blank] * (frames_per_token - 1)
    return torch.stack(rows).log_softmax(dim=-1)


def text_log_probs(text: str, frames_per_token: int = 3) -> torch.Tensor:
    """(T, V) log-probs that spell `text` with certainty."""
    return peaky_log_probs([{ch: 1.0} for ch in text], frames_per_token)


def tone_oracle_log_probs(wave: np.ndarray, sample_rate: int, hop_length: int) -> torch.Tensor:
    """(T, V) log-probs of a tone-corpus waveform, read off the spectrum, with no training.

    A stand-in acoustic model with a known frame rate: frame t is centred on sample
    t * hop_length (as the real front end's frames are); each character's probability is
    the product of the energies at its two chord frequencies; quiet frames are blank.
    """
    grid = np.geomspace(250.0, 6000.0, 16)
    n_fft = 1024
    spec = torch.stft(
        torch.from_numpy(wave),
        n_fft,
        hop_length,
        win_length=400,
        window=torch.hann_window(400),
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).abs()  # (F, T)
    bins = torch.from_numpy(np.round(grid * n_fft / sample_rate).astype(np.int64))
    energy = spec[bins].T  # (T, 16)
    share = energy / energy.sum(dim=1, keepdim=True).clamp_min(1e-8)
    low, high = share[:, :8], share[:, 8:]  # (T, 8) each
    ids = torch.arange(1, len(VOCAB))
    chars = low[:, ids % 8] * high[:, ids // 8]  # (T, V-1)
    loud = (energy.max(dim=1).values > 5.0).float()[:, None]  # (T, 1)
    probs = torch.cat([1.0 - loud + 1e-4, loud * chars / chars.sum(1, keepdim=True) + 1e-4], 1)
    return (probs / probs.sum(dim=1, keepdim=True)).log()


QUICKSTART = Path(__file__).resolve().parent.parent / "recipes" / "quickstart" / "config.toml"


def train_tone_model(root: Path, *overrides: str) -> tuple[Path, Path]:
    """The quickstart recipe trained on an 8-utterance tone corpus (its training and its
    validation set), with `overrides` ("section.key=value"): (experiment folder, manifest).
    The one tiny trained model the phone and the streaming tests start from."""
    from asr.cli import main
    from asr.corpora.tones import make_tone_corpus

    manifest = make_tone_corpus(root / "tones", num_utterances=8, seed=3)
    sets = [f"data.train_manifest={manifest}", f"data.valid_manifest={manifest}", *overrides]
    args = ["train", "--config", str(QUICKSTART), "--exp-dir", str(root / "exp")]
    assert main([*args, *(x for o in sets for x in ("--set", o))]) == 0
    return root / "exp", manifest


class ToneOracleRunner:
    """A LogProbRunner (the seam a Recognizer reads log-probs through) whose "acoustic
    model" is `tone_oracle_log_probs` at 20 ms per frame."""

    vocab = VOCAB
    sample_rate = 16_000
    hop_length = 320
    frame_seconds = hop_length / sample_rate
    stream_window = None  # it cannot stream

    def log_probs(self, waveforms):
        """Mono waveforms -> (B, T', V) float32 log-probs, (B,) lengths, as a runtime's."""
        mats = [tone_oracle_log_probs(w, self.sample_rate, self.hop_length) for w in waveforms]
        lens = torch.tensor([m.shape[0] for m in mats])
        batch = torch.full((len(mats), int(lens.max()), len(VOCAB)), -30.0)
        for b, m in enumerate(mats):
            batch[b, : m.shape[0]] = m
        return batch.float().numpy(), lens.numpy()


class ToneOracleRecognizer(Recognizer):
    """A real Recognizer over the tone oracle's log-probs (ToneOracleRunner)."""

    def __init__(self) -> None:
        super().__init__(ToneOracleRunner(), source="tone oracle")


def assert_written(text: str, raw: str) -> None:
    """`text` is the written form of the spoken words `raw`: a capital first letter, a
    sentence's last mark at the end, and the same words once normalized."""
    assert text[:1].isupper() and text.endswith((".", "?", "!")), text
    assert normalize_text(text) == raw, (text, raw)


def assert_raw(text: str) -> None:
    """`text` is normalized spoken words: lower case, no punctuation."""
    assert text and text == normalize_text(text) and text.islower(), text


SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"
VTT_TIME = r"(\d{2}):(\d{2}):(\d{2})\.(\d{3})"


def _seconds(h, m, s, ms) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Strict SubRip parser: numbered from 1, 'a --> b' with a < b, non-empty text."""
    cues = []
    for i, block in enumerate(text.strip().split("\n\n"), start=1):
        number, timing, *lines = block.split("\n")
        assert number == str(i)
        m = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", timing)
        assert m, timing
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        assert start < end and lines and all(lines)
        cues.append((start, end, " ".join(lines)))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    header, *blocks = text.strip().split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        timing, *lines = block.split("\n")
        m = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", timing)
        assert m, timing
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        assert start < end and lines
        cues.append((start, end, " ".join(lines)))
    return cues


# Every front end the model config accepts (x3 is a stride-3 first convolution), both cells;
# one with an utterance summary after its first layer (model.summary_layer).
MODELS = [
    ModelConfig(
        rnn_type=rnn,
        num_layers=2,
        hidden_size=24,
        conv_channels=4,
        subsampling=factor,
        summary_layer=summary,
    )
    for rnn, factor, summary in [
        ("lstm", 4, 0),
        ("gru", 2, 0),
        ("lstm", 8, 0),
        ("gru", 1, 1),
        ("lstm", 3, 0),
    ]
]


def tiny_checkpoint(folder: Path, cfg: ModelConfig, half: bool = False) -> Path:
    """A random model's checkpoint, folder/model.pt (fp16-rounded weights with `half`)."""
    torch.manual_seed(0)
    model = AcousticModel(cfg, 80, len(VOCAB))
    if model.rnn.summary is not None:  # it starts at zero: weights that change the output
        torch.nn.init.normal_(model.rnn.summary.proj.weight, std=0.1)
    weights = {k: v.half() if half else v for k, v in model.state_dict().items()}
    mean, std = torch.randn(80) - 5.0, torch.rand(80) + 1.0
    config = {"features": asdict(FeatureConfig()), "model": asdict(cfg)}
    payload = inference_payload(config, VOCAB.to_list(), mean, std, weights)
    save_checkpoint(folder / "model.pt", payload)
    return folder / "model.pt"


def write_tone(path: Path, seconds: float, rate: int = RATE, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    subtype = None
    if path.suffix == ".opus":
        fmt, subtype = "OGG", "OPUS"
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format=fmt, subtype=subtype)


def make_librispeech(
    root: Path, subset: str, chapters: dict[tuple[str, str], list[float]], ext: str = ".flac"
) -> None:
    """<root>/<subset>/<spk>/<chap>/<spk>-<chap>-NNNN<ext> plus the chapter's trans.txt."""
    for (speaker, chapter), durations in chapters.items():
        folder = root / subset / speaker / chapter
        lines = []
        for i, seconds in enumerate(durations):
            utt_id = f"{speaker}-{chapter}-{i:04d}"
            write_tone(folder / f"{utt_id}{ext}", seconds)
            lines.append(f"{utt_id} WORDS NUMBER {i}")
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")


FAKE_FLITE = """#!{python}
# Fake flite: a 440 Hz tone, 0.1 s per word; "silence" -> zeros, "fail" -> exit 1.
import sys
import numpy as np
import soundfile as sf
args = sys.argv[1:]
text = open(args[args.index("-f") + 1]).read()
if "fail" in text:
    sys.exit("cannot speak this")
n = int(0.1 * len(text.split()) * 8000)
wave = 0.0 * np.arange(n) if "silence" in text else 0.5 * np.sin(np.arange(n) * 0.3)
sf.write(args[args.index("-o") + 1], wave, 8000)
"""
