"""CTC-CRF: sequence-level training against a unit n-gram in CTC topology.

Xiang & Ou, "CRF-based single-stage acoustic modeling with CTC topology" (ICASSP 2019), the
thu-spmi/CAT toolkit. A path pi (one output symbol per frame) scores

    phi(pi) = sum_t log p(pi_t | x) + log p_LM(B(pi))     B: CTC's collapse

and a label sequence l gets p(l | x) = sum_{pi in B^-1(l)} exp(phi(pi)) / Z(x), so

    loss = -log p(l | x) = CTC(l) - log p_LM(l) + log Z(x)     (>= 0)

where Z sums over every path: the denominator. The network learns what the unit LM does not
already say. The LM here is a unit bigram (or unigram) estimated from the training
transcripts; in CTC topology it is a graph of 2 U + 1 states (U units without the blank):

    state 0             blank, nothing emitted yet
    state 1 + 2u        emitting unit u            (u = 0 .. U-1)
    state 2 + 2u        blank after unit u

Every frame-level symbol sequence is exactly one path of that graph, so with all arc weights
0 (log 1) Z = 1 and the loss is CTC's (a test). log Z is a forward pass in probability space
with a scale per frame (float64, a (B, S) @ (S, S) product per frame); its gradient, the state
occupancies, comes from the matching backward pass (`LogPartition`).

    den = denominator_from_sequences(train_set.targets, len(vocab), vocab.blank_id)
    loss = CtcCrfLoss(den, vocab.blank_id)(log_probs, targets, out_lens, target_lens)  # summed

`train.loss = "ctc_crf"` builds it (asr/training/losses.py); log_probs are (T, B, V).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from asr.config import ConfigError

__all__ = [
    "CRF_LM_ORDERS",
    "CtcCrfLoss",
    "Denominator",
    "denominator_from_sequences",
    "log_partition",
]

# Unit n-gram orders the dense denominator graph holds (a trigram's thousands of states
# would need a sparse one).
CRF_LM_ORDERS = (1, 2)


@dataclass
class Denominator:
    """A unit n-gram in CTC topology: S = 2 U + 1 states (module docstring)."""

    transitions: torch.Tensor  # (S, S) log-weight of moving from state i to state j
    initial: torch.Tensor  # (S,) log-weight of starting in a state (its first frame)
    final: torch.Tensor  # (S,) log-weight of ending in a state (the LM's end of sentence)
    symbols: torch.Tensor  # (S,) long: the output symbol each state emits (blank or a unit)
    unit_ids: torch.Tensor  # (U,) long: vocabulary id of unit u
    bigram: torch.Tensor  # (U + 1, U + 1) log p(next | previous), row/column U: <s> / </s>

    @property
    def num_states(self) -> int:
        return int(self.symbols.numel())

    def sequence_log_prob(self, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) log p_LM of (B, L) padded label sequences (vocabulary ids), with </s>."""
        end = self.bigram.shape[0] - 1
        unit_of = torch.full((int(self.unit_ids.max()) + 1,), end, dtype=torch.long)
        unit_of[self.unit_ids] = torch.arange(end)
        units = unit_of[targets.cpu().clamp(0, len(unit_of) - 1)]  # (B, L)
        lengths = lengths.cpu()[:, None]
        position = torch.arange(units.shape[1] + 1)[None]  # (1, L + 1)
        bound = torch.full((len(units), 1), end)
        prev = torch.cat([bound, units], 1)  # (B, L + 1): <s>, u_1 .. u_L
        nxt = torch.cat([units, bound], 1).scatter(1, lengths, end)  # u_1 .. u_n, </s>
        scores = self.bigram[prev, nxt]  # (B, L + 1)
        return torch.where(position <= lengths, scores, 0.0).sum(1)


def estimate_bigram(
    sequences: Iterable[Sequence[int]], num_units: int, order: int, smoothing: float
) -> np.ndarray:
    """(U + 1, U + 1) log p(next | previous) with add-`smoothing` counts over unit indices;
    index U stands for <s> as a history and </s> as an outcome. Order 1: every row is the
    unigram (next does not depend on previous)."""
    if order not in CRF_LM_ORDERS:
        raise ConfigError(
            f"train.crf_lm_order = {order}: the denominator supports orders 1 and 2 (a dense "
            f"graph of 2 U + 1 states; a trigram's thousands of states would need a sparse one)"
        )
    if not (np.isfinite(smoothing) and smoothing > 0):
        raise ConfigError(f"train.crf_lm_smoothing = {smoothing}: must be a positive number")
    end = num_units
    counts = np.zeros((num_units + 1, num_units + 1))
    for seq in sequences:
        units = [end, *seq, end]
        np.add.at(counts, (units[:-1], units[1:]), 1.0)
    if order == 1:
        counts = np.broadcast_to(counts.sum(0, keepdims=True), counts.shape).copy()
    counts += smoothing
    return np.log(counts / counts.sum(1, keepdims=True))


def denominator_from_sequences(
    sequences: Iterable[Sequence[int]],
    vocab_size: int,
    blank_id: int,
    order: int = 2,
    smoothing: float = 0.5,
) -> Denominator:
    """The CTC-topology graph of a unit n-gram estimated from label sequences (vocabulary
    ids, no blanks)."""
    unit_ids = [i for i in range(vocab_size) if i != blank_id]
    index = {v: u for u, v in enumerate(unit_ids)}
    units = [[index[i] for i in seq] for seq in sequences]
    bigram = estimate_bigram(units, len(unit_ids), order, smoothing)
    return graph_from_bigram(torch.from_numpy(bigram), unit_ids, blank_id)


def graph_from_bigram(bigram: torch.Tensor, unit_ids: Sequence[int], blank_id: int):
    """The CTC-topology Denominator of a (U + 1, U + 1) log-bigram (`estimate_bigram`)."""
    u_count = len(unit_ids)
    states = 2 * u_count + 1
    start = u_count  # <s> history / </s> outcome index of the bigram
    emit = [1 + 2 * u for u in range(u_count)]  # state emitting unit u
    after = [2 + 2 * u for u in range(u_count)]  # blank after unit u
    neg = -torch.inf
    trans = torch.full((states, states), neg, dtype=torch.float64)
    trans[0, 0] = 0.0
    trans[0, emit] = bigram[start, :u_count]
    for u in range(u_count):
        new_label = bigram[u, :u_count].clone()
        trans[after[u], after[u]] = 0.0
        trans[after[u], emit] = new_label  # after a blank, any unit (a repeat too) is new
        trans[emit[u], after[u]] = 0.0
        new_label[u] = 0.0  # the same unit again without a blank: a repeat, no new label
        trans[emit[u], emit] = new_label
    initial = torch.full((states,), neg, dtype=torch.float64)
    initial[0] = 0.0
    initial[emit] = bigram[start, :u_count]
    final = torch.empty(states, dtype=torch.float64)
    final[0] = bigram[start, start]
    final[emit] = bigram[:u_count, start]
    final[after] = bigram[:u_count, start]
    symbols = torch.full((states,), blank_id, dtype=torch.long)
    symbols[emit] = torch.tensor(list(unit_ids), dtype=torch.long)
    return Denominator(trans, initial, final, symbols, torch.tensor(list(unit_ids)), bigram)


def _normalize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x / its row sums, and the sums: (B, S) -> (B, S), (B, 1)."""
    total = x.sum(-1, keepdim=True)
    return x / total, total


class LogPartition(torch.autograd.Function):
    """log Z of (B, T, V) log-probs under a Denominator; gradient: state occupancies."""

    @staticmethod
    def forward(ctx, log_probs, lengths, trans, initial, final, symbols):
        emit = log_probs.detach().double()[..., symbols]  # (B, T, S)
        peak = emit.amax(-1, keepdim=True)  # (B, T, 1)
        weights = (emit - peak).exp()  # (B, T, S), the largest 1 in each frame
        step = trans.exp()  # (S, S)
        frames = emit.shape[1]
        first = initial + emit[:, 0]  # (B, S)
        top = first.amax(-1, keepdim=True)
        alpha, scale = _normalize((first - top).exp())
        log_z = (scale.log() + top).squeeze(-1)  # (B,)
        alphas = [alpha]
        for t in range(1, frames):
            nxt, scale = _normalize((alpha @ step) * weights[:, t])
            live = (t < lengths)[:, None]  # (B, 1): frames past an utterance's end are skipped
            alpha = torch.where(live, nxt, alpha)
            log_z = log_z + torch.where(live, scale.log() + peak[:, t], 0.0).squeeze(-1)
            alphas.append(alpha)
        log_z = log_z + (alpha * final.exp()).sum(-1).log()
        ctx.save_for_backward(torch.stack(alphas, 1), weights, lengths, step, final, symbols)
        ctx.log_probs_shape = log_probs.shape
        ctx.dtype = log_probs.dtype
        return log_z.to(log_probs.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        alphas, weights, lengths, step, final, symbols = ctx.saved_tensors
        batch, frames, states = alphas.shape
        last = (lengths - 1)[:, None]  # (B, 1)
        end = _normalize(final.exp().expand(batch, states))[0]
        beta = end
        occupancy = torch.zeros_like(alphas)  # (B, T, S)
        for t in range(frames - 1, -1, -1):
            if t < frames - 1:
                back = _normalize((beta * weights[:, t + 1]) @ step.T)[0]
                beta = torch.where(t < last, back, end)
            gamma = _normalize(alphas[:, t] * beta)[0]
            occupancy[:, t] = torch.where(t <= last, gamma, 0.0)
        occupancy *= grad_out.double()[:, None, None]
        grad = occupancy.new_zeros(ctx.log_probs_shape)
        grad.index_add_(2, symbols, occupancy)  # states -> the symbols they emit
        return grad.to(ctx.dtype), None, None, None, None, None


def log_partition(log_probs: torch.Tensor, lengths: torch.Tensor, den: Denominator):
    """(B,) log Z: the log-sum over every path of (B, T, V) log-probs plus the LM's
    log-weights, each utterance over its first `lengths[b]` frames (>= 1)."""
    device = log_probs.device
    parts = (den.transitions, den.initial, den.final, den.symbols)
    return LogPartition.apply(log_probs, lengths.to(device), *(p.to(device) for p in parts))


class CtcCrfLoss(nn.Module):
    """Summed CTC-CRF loss with nn.CTCLoss(reduction="sum")'s call: (T, B, V) log-probs,
    (B, U) targets, (B,) lengths. Adds `ctc_weight` x CTC (CAT keeps a small one)."""

    def __init__(self, den: Denominator, blank: int, ctc_weight: float = 0.0):
        super().__init__()
        self.den = den
        self.ctc_weight = ctc_weight
        self.ctc = nn.CTCLoss(blank=blank, reduction="none", zero_infinity=True)

    def forward(self, log_probs, targets, out_lens, target_lens):
        ctc = self.ctc(log_probs, targets, out_lens, target_lens)  # (B,)
        log_z = log_partition(log_probs.transpose(0, 1), out_lens, self.den)  # (B,)
        lm = self.den.sequence_log_prob(targets, target_lens).to(log_z)  # (B,)
        return ((1 + self.ctc_weight) * ctc - lm + log_z).sum()
