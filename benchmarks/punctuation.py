"""Punctuation, case and number restoration on the held-out books: F1s, ITN accuracy, cost.

    python benchmarks/punctuation.py --model data/models/punct-en \
        --books ../shared/data/gutenberg ../shared/data/gutenberg_extra [--split test]

Prints, for the 10 test books (data/gutenberg ids: the 10 lowest ending in 7; `--split dev`
for the development books, ending in 3), `--words-per-book` words each cut into consecutive
`--window`-word utterances (cut anywhere, as a recognizer's are):

1. F1 of comma, period, question and exclamation marks and of capitalized words, on the
   text lower-cased and stripped (digits kept) and on the spoken form (numbers spelled out
   as the recognizer emits them, "Mr." said "mister"). The first word of an utterance is not
   forced to a capital, nor its end to a period, so every figure is the tagger's own.
2. Inverse normalization alone, from the spoken words with the book's own case and marks:
   of `--itn-sentences` held-out prose sentences with numbers (drawn at random), the share
   of number expressions written as the book wrote them: numbers in digits ("1998", "$25",
   "17th") written back exactly, numbers in words ("twenty-five") left in words; then the
   same for as many sentences with digits only.
3. Cost: milliseconds per 20-word utterance (`Punctuator.restore`, one thread) and the model
   folder's size on disk.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from pathlib import Path

import numpy as np

from asr.punctuation.data import (
    CASES,
    PUNCTS,
    paragraphs,
    read_book,
    sample_book,
    split_books,
    tag_paragraph,
)
from asr.punctuation.itn import Token, inverse_normalize
from asr.punctuation.metrics import capital_f1, punct_f1s
from asr.punctuation.restore import Punctuator, RestoreOptions, cased_tokens
from asr.punctuation.runtime import Tagging

_OPEN = RestoreOptions(sentence_start=False, end_sentence=False)
_SENTENCE_RE = re.compile(r"(?<=[.?!])[\"”’]?\s+(?=[\"“‘]?[A-Z])")
_NUMBER = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|thousand|million)"
)
_NUMBER_WORD_RE = re.compile(rf"\b{_NUMBER}\b", re.I)
_NUMBER_RUN_RE = re.compile(rf"\b{_NUMBER}(?:(?:[\s-]+and)?[\s-]+{_NUMBER})*\b(?![’'])", re.I)


def tag_stream(punctuator: Punctuator, words: list[str], window: int):
    """Predicted case (capital or not) and mark indices of a word stream, window by window."""
    capitals, puncts = [], []
    for start in range(0, len(words), window):
        chunk = words[start : start + window]
        tokens = cased_tokens(chunk, punctuator.tagger.tag(chunk), _OPEN)
        capitals += [int(t.text[:1].isupper()) for t in tokens]
        puncts += [PUNCTS.index(t.mark) for t in tokens]
    return np.array(capitals), np.array(puncts)


def score_form(punctuator, books, args, spoken: bool) -> None:
    ref_cases, ref_puncts, hyp_caps, hyp_puncts, n_words = [], [], [], [], 0
    for book in books:
        tagged = sample_book(book, args.words_per_book, args.seed, spoken=spoken)
        capitals, puncts = tag_stream(punctuator, tagged.words, args.window)
        ref_cases.append(np.array(tagged.cases))
        ref_puncts.append(np.array(tagged.puncts))
        hyp_caps.append(capitals)
        hyp_puncts.append(puncts)
        n_words += len(tagged.words)
    ref_case, ref_punct = np.concatenate(ref_cases), np.concatenate(ref_puncts)
    name = "spoken form (numbers spelled)" if spoken else "lower-cased, stripped (digits kept)"
    print(f"\n{name}: {n_words} words, {args.window}-word utterances")
    for mark, f1 in punct_f1s(ref_punct, np.concatenate(hyp_puncts)).items():
        print(f"  {mark:12s} {f1}")
    print(f"  {'capitalized':12s} {capital_f1(ref_case, np.concatenate(hyp_caps))}")


def _is_prose(sentence: str) -> bool:
    """A sentence of at least 6 words, most of them not capitalized (no headings, tables)."""
    words = sentence.split()
    lower = sum(w[:1].islower() for w in words)
    return len(words) >= 6 and lower >= 0.5 * len(words)


def _sentences(books, has, n: int, seed: int) -> list[str]:
    """`n` prose sentences of the books for which `has(sentence)` holds, drawn at random."""
    found = []
    for book in books:
        for paragraph in paragraphs(read_book(book.path)):
            found += [s for s in _SENTENCE_RE.split(paragraph) if _is_prose(s) and has(s)]
    rng = random.Random(seed)
    return rng.sample(found, min(n, len(found)))


def _has_digits(sentence: str) -> bool:
    """Numbers in digits in running text: at most 3 of them, none a note mark ("(1)",
    "[2]", "{21}") or a table cell."""
    numbers = [w for w in sentence.split() if re.search(r"\d", w)]
    notes = re.search(r"[\[{(]\d", sentence)
    return 0 < len(numbers) <= 3 and not notes and "  " not in sentence


def _book_tokens(sentence: str) -> list[Token]:
    """The sentence's spoken words with the book's own case and marks."""
    tagged = tag_paragraph(sentence)
    tagging = Tagging(
        [CASES[c] for c in tagged.cases], [PUNCTS[p] for p in tagged.puncts], tagged.mixed
    )
    return cased_tokens(tagged.words, tagging, _OPEN)


def _strip(token: str) -> str:
    """A written number without the quotes, brackets and marks around it."""
    return token.strip("\"'“”‘’()[]_").rstrip(",;:!?.—-")


def _number_expressions(sentence: str) -> tuple[list[str], list[str]]:
    """The sentence's numbers in digits ("1998", "$25", "17th") and in words ("twenty five",
    "one hundred and five"; hyphens as spaces, lower case)."""
    digits = [_strip(t) for t in re.split(r"[\s\u2014]+", sentence) if re.search(r"\d", t)]
    words = [re.sub(r"[\s-]+", " ", m.group(0).lower()) for m in _NUMBER_RUN_RE.finditer(sentence)]
    return digits, words


def _itn_output(sentence: str) -> tuple[list[str], str]:
    """Inverse normalization of the sentence's spoken words: its written tokens (stripped)
    and its text (lower case, hyphens as spaces) padded with spaces."""
    tokens = inverse_normalize(_book_tokens(sentence))
    text = " ".join(t.text for t in tokens).lower()
    return [_strip(t.text + t.mark) for t in tokens], f" {text} "


def _score_sentences(sentences: list[str], show_misses: int) -> None:
    right = {"digits": 0, "words": 0}
    total = {"digits": 0, "words": 0}
    misses: list[tuple[str, str]] = []
    for sentence in sentences:
        digits, words = _number_expressions(sentence)
        out_tokens, out_text = _itn_output(sentence)
        for number in digits:
            total["digits"] += 1
            if number in out_tokens:
                right["digits"] += 1
                out_tokens.remove(number)
            elif len(misses) < show_misses:
                misses.append((number, sentence[:100]))
        for run in words:
            total["words"] += 1
            if f" {run} " in out_text:
                right["words"] += 1
            elif len(misses) < show_misses:
                misses.append((run, sentence[:100]))
    n_right, n_total = sum(right.values()), sum(total.values())
    print(f"  number expressions written as the book wrote them: {n_right}/{n_total}", end="")
    print(f" = {n_right / max(n_total, 1):.1%}")
    for kind in ("digits", "words"):
        share = right[kind] / max(total[kind], 1)
        print(f"    the book's {kind:6s}: {right[kind]}/{total[kind]} = {share:.1%}")
    for expression, sentence in misses:
        print(f"    missed {expression!r} in: {sentence}")


def score_itn(books, args) -> None:
    def has_numbers(sentence: str) -> bool:
        return _has_digits(sentence) or bool(_NUMBER_WORD_RE.search(sentence))

    sentences = _sentences(books, has_numbers, args.itn_sentences, args.seed)
    print(f"\nITN alone, {len(sentences)} held-out sentences with numbers (digits or words):")
    _score_sentences(sentences, args.show_misses)
    sentences = _sentences(books, _has_digits, args.itn_sentences, args.seed)
    print(f"ITN alone, the {len(sentences)} held-out sentences with numbers in digits:")
    _score_sentences(sentences, args.show_misses)


def score_cost(punctuator: Punctuator, books, args) -> None:
    tagged = sample_book(books[0], 20 * args.cost_utterances, args.seed)
    utterances = [tagged.words[i : i + 20] for i in range(0, len(tagged.words) - 20, 20)]
    utterances = utterances[: args.cost_utterances]
    for words in utterances[:20]:  # warm-up
        punctuator.restore(words)
    times = []
    for words in utterances:
        start = time.perf_counter()
        punctuator.restore(words)
        times.append(1000 * (time.perf_counter() - start))
    size = sum(p.stat().st_size for p in Path(args.model).iterdir() if p.is_file())
    print(f"\ncost: {len(times)} utterances of 20 words, onnxruntime on 1 thread:")
    print(
        f"  median {statistics.median(times):.2f} ms, mean {statistics.mean(times):.2f} ms,", end=""
    )
    print(f" p95 {np.percentile(times, 95):.2f} ms")
    print(f"  model folder {args.model}: {size / 1e6:.2f} MB on disk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="data/models/punct-en", help="model folder")
    parser.add_argument("--books", nargs="+", required=True, help="book folders (gutenberg first)")
    parser.add_argument("--split", default="test", choices=["test", "dev"], help="which books")
    parser.add_argument("--words-per-book", type=int, default=20000, help="words from each")
    parser.add_argument("--window", type=int, default=40, help="words an utterance")
    parser.add_argument("--itn-sentences", type=int, default=200, help="sentences for ITN")
    parser.add_argument("--cost-utterances", type=int, default=500, help="timed utterances")
    parser.add_argument("--show-misses", type=int, default=10, help="ITN misses to print")
    parser.add_argument("--seed", type=int, default=1, help="where each book's sample starts")
    args = parser.parse_args()
    books = split_books(args.books)[args.split]
    print(f"{args.split} books: {[b.gutenberg_id for b in books]}")
    punctuator = Punctuator(args.model)
    score_form(punctuator, books, args, spoken=False)
    score_form(punctuator, books, args, spoken=True)
    score_itn(books, args)
    score_cost(punctuator, books, args)


if __name__ == "__main__":
    main()
