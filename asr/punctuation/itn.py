"""Inverse text normalization: spoken words back to the written forms a book would print.

The inverse of `asr.text.normalize_text`'s number spelling, in a book's style: numbers
said as words stay words ("two men", "twenty five years") except where print uses digits:

- years: "nineteen ninety eight" -> 1998, "eighteen oh five" -> 1805;
- money and percentages: "twenty five dollars" -> $25, "two dollars and fifty cents" ->
  $2.50, "five percent" -> 5%;
- decimals: "two point five" -> 2.5;
- dates: "the third of may" -> "the 3rd of May", "may third" -> "May 3rd", "december
  nine" -> "December 9", "on the twelfth," -> "on the 12th,";
- times: "three thirty p m" -> "3:30 p.m.", "ten a m" -> "10 a.m.";
- numbers of `ItnConfig.min_digits` and more that are not round ("one hundred and five"
  -> 105; "a thousand", "three hundred" stay words);
- titles before a name: "mister john" -> "Mr. John", "missus", "doctor" -> "Mrs.", "Dr.".

Each written token keeps the indices of the spoken words it was made of, so word timings
survive. A mark (",", ".") after a word ends any number, as a reader's pause would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["ItnConfig", "Token", "inverse_normalize", "parse_cardinal"]


@dataclass(frozen=True)
class ItnConfig:
    min_digits: int = 100  # a plain, non-round number this large is written in digits

    def __post_init__(self) -> None:
        if self.min_digits < 0:
            raise ValueError(f"itn.min_digits must be >= 0, got {self.min_digits}")


@dataclass(frozen=True)
class Token:
    """A written word, the mark after it, and the spoken words (indices) it stands for."""

    text: str  # "Dashwood", "1998", "$25"
    mark: str  # "", ",", ".", "?", "!"
    spoken: tuple[int, ...]


_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_ONES += ("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen")
_ONES += ("eighteen", "nineteen")
_UNITS = {w: i for i, w in enumerate(_ONES)}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
_TENS |= {"sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_ORD_UNITS = {"first": 1, "second": 2, "third": 3, "fifth": 5, "eighth": 8, "ninth": 9}
_ORD_UNITS |= {"twelfth": 12}
_ORD_UNITS |= {w + "th": v for w, v in _UNITS.items() if v > 3 and w + "th" not in _ORD_UNITS}
_ORD_UNITS = {w: v for w, v in _ORD_UNITS.items() if w not in ("fiveth", "eightth", "nineth")}
_ORD_UNITS.pop("twelveth", None)
_ORD_TENS = {w[:-1] + "ieth": v for w, v in _TENS.items()}
_SCALES = {"thousand": 1000, "million": 10**6, "billion": 10**9}
_MONTHS = "january february march april may june july august september october november december"
_MONTHS = set(_MONTHS.split())
_MONTH_ABBREVIATIONS = {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct"}
_MONTH_ABBREVIATIONS |= {"nov", "dec"}
_TITLES = {"mister": "Mr.", "missus": "Mrs.", "doctor": "Dr."}
_SUFFIXES = {1: "st", 2: "nd", 3: "rd"}


@dataclass(frozen=True)
class _Number:
    value: int
    end: int  # index after the last word
    ordinal: bool
    round: bool  # one word or a multiple of 100 said as such: stays words in prose


def _sub100(words: Sequence[str], i: int) -> _Number | None:
    w = words[i] if i < len(words) else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if w in _TENS:
        if 1 <= _UNITS.get(nxt, 0) <= 9:
            return _Number(_TENS[w] + _UNITS[nxt], i + 2, False, False)
        if 1 <= _ORD_UNITS.get(nxt, 0) <= 9:
            return _Number(_TENS[w] + _ORD_UNITS[nxt], i + 2, True, False)
        return _Number(_TENS[w], i + 1, False, True)
    if w in _ORD_TENS:
        return _Number(_ORD_TENS[w], i + 1, True, True)
    if w in _UNITS:
        return _Number(_UNITS[w], i + 1, False, True)
    if w in _ORD_UNITS:
        return _Number(_ORD_UNITS[w], i + 1, True, True)
    return None


def _sub1000(words: Sequence[str], i: int) -> _Number | None:
    low = _sub100(words, i)
    if low is None or low.ordinal or low.end >= len(words):
        return low
    w = words[low.end]
    if w == "hundredth":
        return _Number(low.value * 100, low.end + 1, True, True)
    if w != "hundred" or low.value == 0:
        return low
    hundreds, j = low.value * 100, low.end + 1
    k = j + 1 if j < len(words) and words[j] == "and" else j
    rest = _sub100(words, k)
    if rest is None:
        return _Number(hundreds, j, False, True)
    return _Number(hundreds + rest.value, rest.end, rest.ordinal, False)


def _cardinal(words: Sequence[str], i: int) -> _Number | None:
    """The longest number said from words[i] ("three thousand two hundred and five")."""
    part = _sub1000(words, i)
    if part is None:
        return None
    total, last_scale = 0, float("inf")
    while not part.ordinal and part.end < len(words):
        w = words[part.end]
        scale = _SCALES.get(w) or _SCALES.get(w[:-2] if w.endswith("th") else "", 0)
        if not scale or scale >= last_scale or part.value == 0:
            break
        total, last_scale = total + part.value * scale, scale
        if w.endswith("th"):
            return _Number(total, part.end + 1, True, True)
        j = part.end + 1
        k = j + 1 if j < len(words) and words[j] == "and" else j
        following = _sub1000(words, k)
        if following is None:
            return _Number(total, j, False, True)
        part = replace(following, round=False)
    return replace(part, value=total + part.value, round=part.round and total == 0)


def parse_cardinal(words: Sequence[str]) -> int | None:
    """The number said by all of `words` ("one hundred and five" -> 105), else None."""
    number = _cardinal(list(words), 0)
    return number.value if number and number.end == len(words) and not number.ordinal else None


def _year(words: Sequence[str], i: int) -> _Number | None:
    """'nineteen ninety eight', 'eighteen oh five', 'twenty twenty' (first group 11-20)."""
    high = _sub100(words, i)
    if high is None or high.ordinal or not 11 <= high.value <= 20 or high.end >= len(words):
        return None
    j = high.end
    if words[j] == "oh" and j + 1 < len(words) and 1 <= _UNITS.get(words[j + 1], 0) <= 9:
        return _Number(high.value * 100 + _UNITS[words[j + 1]], j + 2, False, False)
    low = _sub100(words, j)
    if low is None or low.ordinal or not 10 <= low.value <= 99:
        return None
    if low.end < len(words) and words[low.end] in ("hundred", *_SCALES):
        return None
    return _Number(high.value * 100 + low.value, low.end, False, False)


def _ordinal_text(value: int) -> str:
    suffix = "th" if 10 <= value % 100 <= 20 else _SUFFIXES.get(value % 10, "th")
    return f"{value}{suffix}"


@dataclass
class _Span:
    """Tokens [start, end) to be written as `text`."""

    start: int
    end: int
    text: str


def _words_without_marks(tokens: Sequence[Token], i: int) -> list[str]:
    """Lower-case words from tokens[i] up to and including the first one with a mark."""
    words = []
    for token in tokens[i:]:
        words.append(token.text.lower())
        if token.mark:
            break
    return words


def _number_span(tokens: Sequence[Token], i: int, config: ItnConfig) -> _Span | None:
    words = _words_without_marks(tokens, i)
    number = _year(words, 0)
    kind = "year"
    if number is None:
        number, kind = _cardinal(words, 0), "number"
    if number is None:
        return None
    after = words[number.end : number.end + 5]
    before = tokens[i - 1].text.lower() if i > 0 else ""
    if kind == "year":
        return _Span(i, i + number.end, str(number.value))
    if number.ordinal:
        return _date_span(tokens, i, number, after)
    if before.rstrip(".") in _MONTHS | _MONTH_ABBREVIATIONS and 1 <= number.value <= 31:
        return _Span(i, i + number.end, str(number.value))  # "Dec. 9", "May 3"
    return _unit_span(tokens, i, number, words, after, config)


def _date_span(tokens: Sequence[Token], i: int, number: _Number, after: list[str]):
    """An ordinal is a date, in digits, next to a month ("the 3rd of May", "May 3rd") or as
    a day on its own before a pause ("on the 12th,", "of the 17th.")."""
    before = [t.text.lower() for t in tokens[max(0, i - 2) : i]]
    month_after = after[:1] in [[m] for m in _MONTHS] or (
        after[:1] == ["of"] and after[1:2] and after[1] in _MONTHS
    )
    last = tokens[i + number.end - 1]
    ends = last.mark or i + number.end == len(tokens)
    day_alone = before[-1:] == ["the"] and before[:1] in (["on"], ["of"]) and ends
    if before[-1:] and before[-1] in _MONTHS or month_after or day_alone:
        return _Span(i, i + number.end, _ordinal_text(number.value))
    return None


def _unit_span(tokens, i, number: _Number, words, after, config: ItnConfig) -> _Span | None:
    end, value = i + number.end, number.value
    if after[:1] == ["point"] and all(w in _UNITS and _UNITS[w] < 10 for w in after[1:2]):
        digits = []
        for w in after[1:]:
            if w not in _UNITS or _UNITS[w] > 9:
                break
            digits.append(str(_UNITS[w]))
        if digits:
            stop = number.end + 1 + len(digits)
            percent = words[stop : stop + 1] == ["percent"]
            text = f"{value}.{''.join(digits)}" + ("%" if percent else "")
            return _Span(i, i + stop + percent, text)
    if after[:1] in (["dollars"], ["dollar"]):
        cents = _cents(words, number.end + 1)
        if cents is not None:
            return _Span(i, i + cents[1], f"${value}.{cents[0]:02d}")
        return _Span(i, end + 1, f"${value}")
    if after[:1] == ["percent"]:
        return _Span(i, end + 1, f"{value}%")
    if after[:2] in (["a", "m"], ["p", "m"]) and 1 <= value <= 12:
        return _Span(i, end + 2, f"{value} {after[0]}.m.")
    clock = _clock(words, number)
    if clock is not None:
        return _Span(i, i + clock[1], clock[0])
    if value >= config.min_digits and not number.round:
        return _Span(i, end, str(value))
    return None


def _cents(words: Sequence[str], j: int) -> tuple[int, int] | None:
    """'and fifty cents' at words[j]: (50, index after 'cents')."""
    if words[j : j + 1] != ["and"]:
        return None
    cents = _sub100(words, j + 1)
    if cents is None or cents.ordinal or words[cents.end : cents.end + 1] not in (["cents"],):
        return None
    return cents.value, cents.end + 1


def _clock(words: Sequence[str], hour: _Number) -> tuple[str, int] | None:
    """'three thirty p m' -> ('3:30 p.m.', index after 'm'); 'oh five' minutes too."""
    if not 1 <= hour.value <= 12 or hour.end >= len(words):
        return None
    j = hour.end
    if words[j] == "oh" and j + 1 < len(words) and 1 <= _UNITS.get(words[j + 1], 0) <= 9:
        minutes, end = _UNITS[words[j + 1]], j + 2
    else:
        low = _sub100(words, j)
        if low is None or low.ordinal or not 10 <= low.value <= 59:
            return None
        minutes, end = low.value, low.end
    if words[end : end + 2] not in (["a", "m"], ["p", "m"]):
        return None
    return f"{hour.value}:{minutes:02d} {words[end]}.m.", end + 2


def _merge(tokens: Sequence[Token], span: _Span) -> Token:
    spoken = tuple(k for t in tokens[span.start : span.end] for k in t.spoken)
    return Token(span.text, tokens[span.end - 1].mark, spoken)


def _title(tokens: Sequence[Token], i: int) -> Token | None:
    token = tokens[i]
    title = _TITLES.get(token.text.lower())
    if title is None or token.mark or i + 1 >= len(tokens):
        return None
    name = tokens[i + 1].text
    return replace(token, text=title) if name[:1].isupper() else None


def _capitalize_months(tokens: list[Token]) -> list[Token]:
    """A month next to a written date ordinal ("3rd of may") is a name."""
    out = list(tokens)
    for i, token in enumerate(out):
        if token.text.lower() not in _MONTHS:
            continue
        near = [out[k].text for k in (i - 2, i + 1) if 0 <= k < len(out)]
        if any(t[:1].isdigit() for t in near):
            out[i] = replace(token, text=token.text.capitalize())
    return out


def inverse_normalize(tokens: Sequence[Token], config: ItnConfig = ItnConfig()) -> list[Token]:
    """Written forms of numbers, money, dates, times and titles (module docstring)."""
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        span = _number_span(tokens, i, config)
        if span is not None:
            out.append(_merge(tokens, span))
            i = span.end
            continue
        out.append(_title(tokens, i) or tokens[i])
        i += 1
    return _capitalize_months(out)
