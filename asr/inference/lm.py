"""Word (or character) n-gram language models for beam search, built with KenLM.

    prepare_text(books, "exp/lm/text.txt", exclude_ids={3659, 14851, 135})
    build_lm("exp/lm/text.txt", "exp/lm", order=4)  # lm.arpa, lm.bin, lexicon.txt, lm.json

Text goes through the training normalizer (`normalize_text`), so the LM's words are spelled
exactly as the decoder spells them. KenLM's `lmplz` and `build_binary` are found in
$ASR_KENLM_BIN or on PATH; scripts/install_kenlm.sh builds them.
"""

from __future__ import annotations

import json
import logging
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from asr import jsonsafe
from asr.config import option
from asr.files import atomic_write, expand_paths
from asr.layout import LEXICON, LM_ARPA, LM_BINARY, LM_INFO
from asr.text import WORD_BOUNDARY, Vocabulary, normalize_text
from asr.usererror import UserError

__all__ = [
    "LMError",
    "LMInfo",
    "TextStats",
    "book_id",
    "build_lm",
    "LMBuildOptions",
    "check_build_options",
    "find_kenlm_tool",
    "parse_book_ids",
    "prepare_text",
    "read_lm_info",
    "split_sentences",
    "write_lexicon",
]

INSTALL_SCRIPT = "scripts/install_kenlm.sh"
MAX_ORDER = 6  # KENLM_MAX_ORDER that INSTALL_SCRIPT compiles build_binary with
MAX_QUANTIZE_BITS = 25  # build_binary -q: 26 and more are refused
# lmplz's vocabulary hash alone takes 24 MiB (its default estimate of a million words);
# below this it aborts ("Vocab hash size estimate ... exceeds total memory").
MIN_MEMORY = 32 << 20
_MEMORY_RE = re.compile(r"(\d+(?:\.\d+)?)([%bKMGT]?)")

_SENTENCE_END_RE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))\s+")
_BOOK_ID_RE = re.compile(r"pg(\d+)")
_ABBREVIATIONS = {"mr.", "mrs.", "dr.", "st.", "messrs.", "mme.", "mlle.", "capt.", "col."}


log = logging.getLogger(__name__)


class LMError(UserError, RuntimeError):
    """A language model cannot be built or read (missing tool, bad input, tool failure)."""


@dataclass
class TextStats:
    books: int = 0  # books read
    excluded_books: int = 0  # books skipped because their id was excluded
    sentences: int = 0  # sentences written
    words: int = 0  # words written
    dropped_sentences: int = 0  # sentences with characters the vocabulary cannot spell
    dropped_chars: str = ""  # those characters, sorted (at most 50)


@dataclass
class LMInfo:
    unit: str  # "word" (with a lexicon) or "char" (for lexicon-free search)
    order: int  # n-gram order
    prune: list[int]  # lmplz --prune thresholds per order, [] for none
    text: str  # training text
    vocab_size: int  # distinct words (unit "word") or tokens (unit "char")


# --- text ----------------------------------------------------------------------------------


def split_sentences(paragraph: str) -> list[str]:
    """Raw text of one paragraph -> sentences, split after . ! ? (and closing quotes),
    except after titles such as "Mr."."""
    sentences: list[str] = []
    for piece in _SENTENCE_END_RE.split(" ".join(paragraph.split())):
        if sentences and sentences[-1].rsplit(" ", 1)[-1].lower() in _ABBREVIATIONS:
            sentences[-1] += " " + piece
        elif piece:
            sentences.append(piece)
    return sentences


def _open_book(path: Path):
    """A book's text, xz-compressed (pg1234.txt.xz) or plain."""
    if path.suffix.lower() == ".xz":
        return lzma.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _paragraphs(path: Path) -> Iterator[str]:
    lines: list[str] = []
    with _open_book(path) as f:
        for line in f:
            if line.strip():
                lines.append(line)
            elif lines:
                yield " ".join(lines)
                lines = []
    if lines:
        yield " ".join(lines)


def book_id(path: Path) -> int | None:
    """Project Gutenberg id from a file name like pg1234.txt(.xz); None if it has none."""
    stem = Path(path.stem).stem if path.suffix.lower() == ".xz" else path.stem
    match = _BOOK_ID_RE.fullmatch(stem)
    return int(match.group(1)) if match else None


def prepare_text(
    books: Sequence[str | Path],
    out_path: str | Path,
    exclude_ids: Iterable[int] = (),
    vocab: Vocabulary | None = None,
) -> TextStats:
    """Write one normalized sentence per line from raw book files (or folders of *.txt and
    xz-compressed *.txt.xz).

    Books whose Gutenberg id (pg<ID>.txt) is in `exclude_ids` are skipped, so that an LM
    never contains an evaluation set's text. Sentences with characters `vocab` cannot spell
    are dropped and counted in the returned stats.
    """
    vocab = vocab or Vocabulary.english()
    exclude = set(exclude_ids)
    stats, unknown = TextStats(), Counter()
    paths = expand_paths(books, {".txt", ".xz"}, LMError)
    with atomic_write(out_path) as out:  # whole or not at all
        for path in paths:
            if book_id(path) in exclude:
                stats.excluded_books += 1
                continue
            stats.books += 1
            for sentence in _book_sentences(path):
                bad = vocab.find_unknown(sentence)
                if bad:
                    stats.dropped_sentences += 1
                    unknown.update(bad)
                    continue
                out.write(sentence + "\n")
                stats.sentences += 1
                stats.words += sentence.count(" ") + 1
    stats.dropped_chars = "".join(sorted(unknown)[:50])
    return stats


def _book_sentences(path: Path) -> Iterator[str]:
    for paragraph in _paragraphs(path):
        for raw in split_sentences(paragraph):
            sentence = normalize_text(raw)
            if sentence:
                yield sentence


# --- building ------------------------------------------------------------------------------


def find_kenlm_tool(name: str) -> str:
    """Path of a KenLM program: $ASR_KENLM_BIN/<name>, else PATH; LMError naming the fix."""
    folder = os.environ.get("ASR_KENLM_BIN")
    if folder and (Path(folder) / name).is_file():
        return str(Path(folder) / name)
    found = shutil.which(name)
    if found is None:
        raise LMError(
            f"KenLM's {name!r} was not found in $ASR_KENLM_BIN or on PATH; build it with "
            f"{INSTALL_SCRIPT} (sudo {INSTALL_SCRIPT}, or KENLM_PREFIX=$HOME/.local "
            f"KENLM_SKIP_APT=1 {INSTALL_SCRIPT})"
        )
    return found


@dataclass(frozen=True)
class LMBuildOptions:
    """How `build_lm` builds: checked on creation, before KenLM runs (an order past what
    build_binary is compiled for, thresholds lmplz refuses, an empty vocabulary, a memory
    budget lmplz cannot sort in, quantization bits build_binary refuses: LMError)."""

    order: int = option(4, "n-gram order")
    prune: tuple[int, ...] = option((), "lmplz count thresholds per order: 0 0 1", nargs="+")
    unit: str = option("word", "LM tokens: word or char")
    vocab_size: int | None = option(None, "keep the N commonest words in the LM and lexicon")
    memory: str = option("25%", "lmplz memory budget (-S)")
    quantize_bits: int = option(
        0, "a trie with N-bit probabilities, a third of the size (0: probing)", "--quantize"
    )

    def __post_init__(self) -> None:
        check_build_options(self)


def build_lm(text_path: str | Path, out_dir: str | Path, **options) -> LMInfo:
    """lm.arpa, lm.bin (KenLM binary), lexicon.txt (unit "word") and lm.json under `out_dir`,
    built as `options` (LMBuildOptions fields) say."""
    text_path, out_dir, how = Path(text_path), Path(out_dir), LMBuildOptions(**options)
    if not text_path.is_file():
        raise LMError(f"{text_path}: no such text file")
    tools = find_kenlm_tool("lmplz"), find_kenlm_tool("build_binary")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Everything is built beside the folder and moved in only once all of it is: a failed
    # build leaves an existing LM (lm.arpa, lm.bin, lexicon.txt, lm.json) as it was.
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as staging:
        info = _build_into(Path(staging), text_path, how, *tools)
        for name in (LM_ARPA, LM_BINARY, LEXICON, LM_INFO):
            built = Path(staging) / name
            if built.is_file():
                os.replace(built, out_dir / name)
            elif name == LEXICON:  # a character LM has none: an old one would mislead
                (out_dir / name).unlink(missing_ok=True)
    return info


def check_build_options(how: LMBuildOptions) -> None:
    """LMError for a `build_lm` option KenLM would take badly (LMBuildOptions)."""
    order, prune, quantize_bits = how.order, list(how.prune), how.quantize_bits
    if how.unit not in ("word", "char"):
        raise LMError(f"LM unit must be 'word' or 'char', got {how.unit!r}")
    if not _is_int(order) or not 1 <= order <= MAX_ORDER:
        raise LMError(
            f"--order must be 1-{MAX_ORDER} (KenLM is built for at most {MAX_ORDER}: "
            f"KENLM_MAX_ORDER in {INSTALL_SCRIPT}), got {order}"
        )
    if not all(_is_int(p) and p >= 0 for p in prune) or len(prune) > order:
        raise LMError(f"--prune takes at most {order} counts >= 0 (one per order), got {prune}")
    if prune and (prune[0] != 0 or prune != sorted(prune)):
        raise LMError(
            f"--prune counts must start at 0 (lmplz cannot prune unigrams) and never "
            f"decrease, got {prune}"
        )
    if how.vocab_size is not None and (not _is_int(how.vocab_size) or how.vocab_size < 1):
        raise LMError(f"--vocab-size must be >= 1 (words kept), got {how.vocab_size}")
    _check_memory(how.memory)
    if not _is_int(quantize_bits) or not 0 <= quantize_bits <= MAX_QUANTIZE_BITS:
        raise LMError(
            f"--quantize must be 0 (no quantization) to {MAX_QUANTIZE_BITS} bits, "
            f"got {quantize_bits}"
        )


def _check_memory(memory: str) -> None:
    """lmplz -S: a percentage of this machine's memory (0-100%], or a size (bytes with
    b, K (the default unit), M, G, T) of at least MIN_MEMORY and at most the memory."""
    match = _MEMORY_RE.fullmatch(str(memory).strip())
    if match is None:
        raise LMError(f"--memory must be like 25% or 2G, got {memory!r}")
    value, unit = float(match.group(1)), match.group(2) or "K"
    if unit == "%":
        if not 0 < value <= 100:
            raise LMError(f"--memory must be a percentage in (0, 100], got {memory!r}")
        return
    size = value * 1024 ** "bKMGT".index(unit)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not MIN_MEMORY <= size <= total:
        raise LMError(
            f"--memory {memory!r}: lmplz needs at least {MIN_MEMORY >> 20}M to sort in, "
            f"and this machine has {total / 2**30:.1f}G (or give a percentage)"
        )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _build_into(out_dir: Path, text_path, how: LMBuildOptions, lmplz, build_binary) -> LMInfo:
    """`build_lm`'s work, every file written into `out_dir` (a staging folder)."""
    order, prune, unit, vocab_size = how.order, how.prune, how.unit, how.vocab_size
    memory, quantize_bits = how.memory, how.quantize_bits
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        corpus = Path(tmp) / "normalized.txt"
        _write_normalized(text_path, corpus)
        counts = _word_counts(corpus)
        if not counts:
            raise LMError(f"{text_path}: no words")
        words = [w for w, _ in counts.most_common(vocab_size)]
        if unit == "char":
            corpus = Path(tmp) / "chars.txt"
            _write_char_text(Path(tmp) / "normalized.txt", corpus)
        cmd = [lmplz, "-o", str(order), "--text", str(corpus), "--arpa", str(out_dir / LM_ARPA)]
        cmd += ["-S", memory, "-T", tmp, "--discount_fallback"]
        if prune:
            cmd += ["--prune", *map(str, prune)]
        if unit == "word" and vocab_size is not None:
            limit = Path(tmp) / "vocab.txt"
            limit.write_text("\n".join(words) + "\n", encoding="utf-8")
            cmd += ["--limit_vocab_file", str(limit)]
        _run(cmd)
        layout = (
            ["-q", str(quantize_bits), "-b", str(quantize_bits), "trie"] if quantize_bits else []
        )
        _run([build_binary, *layout, str(out_dir / LM_ARPA), str(out_dir / LM_BINARY)])
    if unit == "word":
        write_lexicon(words, out_dir / LEXICON)
    size = len(words) if unit == "word" else len({ch for w in counts for ch in w}) + 1
    info = LMInfo(unit, order, list(prune), str(text_path), size)
    (out_dir / LM_INFO).write_text(json.dumps(asdict(info), indent=2) + "\n")
    return info


def _write_normalized(text_path: Path, out_path: Path, vocab: Vocabulary | None = None) -> None:
    """The text as the model spells it: each line through `normalize_text` (curly quotes,
    case, digits, punctuation), lines with characters `vocab` cannot spell left out. Text
    from `prepare_text` passes unchanged."""
    vocab = vocab or Vocabulary.english()
    changed = dropped = 0
    try:
        with text_path.open(encoding="utf-8") as f, out_path.open("w", encoding="utf-8") as out:
            for line in f:
                text = normalize_text(line)
                changed += text != line.strip()
                if vocab.find_unknown(text):
                    dropped += 1
                elif text:
                    out.write(text + "\n")
    except UnicodeDecodeError as err:
        raise LMError(
            f"{text_path}: not UTF-8 text ({err.reason}); see asr lm prepare-text"
        ) from err
    if changed or dropped:
        log.warning(
            "%s: %d line(s) normalized, %d left out for characters outside the vocabulary "
            "(asr lm prepare-text prepares raw books)",
            text_path,
            changed,
            dropped,
        )


def parse_book_ids(items: Iterable[str]) -> set[int]:
    """Gutenberg ids from "ID,ID,..." strings (--exclude-ids); LMError for a non-integer."""
    try:
        return {int(x) for item in items for x in item.split(",") if x.strip()}
    except ValueError as err:
        raise LMError(f"--exclude-ids takes comma-separated integers ({err})") from err


def _word_counts(text_path: Path) -> Counter:
    counts: Counter = Counter()
    with text_path.open(encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    return counts


def _write_char_text(text_path: Path, out_path: Path) -> None:
    """ "the cat" -> "t h e | c a t": each character an LM token, spaces as boundaries."""
    with text_path.open(encoding="utf-8") as f, out_path.open("w", encoding="utf-8") as out:
        for line in f:
            out.write(f" {WORD_BOUNDARY} ".join(" ".join(w) for w in line.split()) + "\n")


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise LMError(f"{Path(cmd[0]).name} failed (exit {done.returncode}):\n{tail}")


def write_lexicon(words: Iterable[str], path: str | Path) -> None:
    """One 'word w o r d |' line per word: its spelling in vocabulary tokens, then a boundary."""
    with Path(path).open("w", encoding="utf-8") as f:
        for word in words:
            f.write(f"{word} {' '.join(word)} {WORD_BOUNDARY}\n")


def read_lm_info(lm_path: str | Path) -> LMInfo | None:
    """The lm.json written beside an LM by `build_lm`; None for an LM built elsewhere."""
    meta = Path(lm_path).parent / LM_INFO
    if not meta.is_file():
        return None
    try:
        return LMInfo(**jsonsafe.load_file(meta))
    except (jsonsafe.JSONInputError, TypeError) as err:
        raise LMError(f"{meta}: not an LM description ({err})") from err
