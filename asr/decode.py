"""CTC decoders: interchangeable strategies behind `(log_probs, lengths, ...) -> hypotheses`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from asr.text import Vocabulary

__all__ = ["DecodingOptions", "Hypothesis", "decode", "greedy_search"]


@dataclass(frozen=True)
class DecodingOptions:
    decoder: str = "greedy"  # "greedy" (best path) or "beam" (needs the beam-search backend)

    def __post_init__(self) -> None:
        if self.decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam', got {self.decoder!r}")


@dataclass
class Hypothesis:
    text: str  # decoded, normalized text
    token_ids: list[int] = field(default_factory=list)  # emitted tokens, blanks and repeats removed
    timesteps: list[int] = field(default_factory=list)  # output frame of each emitted token
    score: float = 0.0  # total log-probability of the best path


def greedy_search(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int = 0
) -> list[tuple[list[int], list[int], float]]:
    """Best-path CTC decoding of a batch.

    (B, T, V) log-probs, (B,) valid frames -> per utterance (token ids, frame of each
    token, path log-probability): the argmax per frame, repeats merged, blanks removed.
    """
    scores, best = log_probs.max(dim=-1)  # (B, T), (B, T)
    previous = torch.nn.functional.pad(best[:, :-1], (1, 0), value=blank_id)
    emit = (best != blank_id) & (best != previous)  # (B, T)
    results = []
    for b in range(best.shape[0]):
        n = int(lengths[b])
        frames = emit[b, :n].nonzero().squeeze(1)
        results.append((best[b, frames].tolist(), frames.tolist(), float(scores[b, :n].sum())))
    return results


def decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    vocab: Vocabulary,
    options: DecodingOptions = DecodingOptions(),
) -> list[Hypothesis]:
    """Decode a batch with the strategy `options.decoder` names."""
    if options.decoder == "greedy":
        paths = greedy_search(log_probs.float().cpu(), lengths.cpu(), vocab.blank_id)
        return [Hypothesis(_join(vocab, ids), ids, steps, score) for ids, steps, score in paths]
    raise NotImplementedError(f"decoder {options.decoder!r} is not available yet")


def _join(vocab: Vocabulary, ids: list[int]) -> str:
    return " ".join(vocab.decode(ids).split())
