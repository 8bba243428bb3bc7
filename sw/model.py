"""BS4NN as a PyTorch module whose forward pass is the exact integer semantics.

The spike bins come from the same numba kernels as the fast reference, on the signs of the latent real
weights (0 -> +1) and the integer thresholds the checkpoint stores. Gradients are not autograd's: two
rules are offered, each a custom `autograd.Function`:

- "s4nn": the paper's temporal rule (docs/training.md), the baseline. Spike times are the outputs,
  d t_j / d w_ij = -[t_i < t_j], d t_j / d t_i = w_ij [t_i < t_j], the incoming error of every layer is
  L2-normalised per image, and a per-layer (or per-neuron) `fact` learns the threshold floor(thr/fact)+1.
- "decision": cross-entropy on the output potentials at the decision bin, V(b*) with b* = t* - 1 (or
  T_MAX - 1 with no output spike), which is exactly what the strict decision compares. "Hidden neuron j
  fired by b*" gets a straight-through triangle surrogate around V_j(b* - 1) - theta_j, and per-neuron
  hidden thresholds are learned through it. Weights pass sign() straight through inside [-1, 1].
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from torch import nn

from . import kernels
from .network import Layer, Network
from .semantics import T_MAX, threshold_from_fact


def signs_of(weights: torch.Tensor) -> np.ndarray:
    """int8 +-1 signs of latent weights as a numpy array, an exact 0 giving +1."""
    return hard_signs(weights).numpy()


def run_layer(in_bins: np.ndarray, signs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Exact spike bins (B, n_out) int16 of one layer (the reference's kernel)."""
    dtype = kernels.accumulator_dtype(signs.shape[0])
    out = np.empty((in_bins.shape[0], signs.shape[1]), np.int16)
    kernels.layer_spike_bins(np.ascontiguousarray(in_bins, np.int16), signs, thresholds.astype(dtype), out)
    return out


@numba.njit(cache=True, parallel=True)
def _temporal_grads(t_in, t_out, g, weights, grad_w, grad_in):
    """grad_w[i, j] = -sum_b g[b, j] [t_in[b, i] < t_out[b, j]];
    grad_in[b, i] = sum_j weights[i, j] g[b, j] [t_in[b, i] < t_out[b, j]]."""
    n_batch, n_in = t_in.shape
    n_out = t_out.shape[1]
    for i in numba.prange(n_in):
        for j in range(n_out):
            grad_w[i, j] = 0.0
        for b in range(n_batch):
            ti = t_in[b, i]
            acc = 0.0
            for j in range(n_out):
                if ti < t_out[b, j]:
                    grad_w[i, j] -= g[b, j]
                    acc += weights[i, j] * g[b, j]
            grad_in[b, i] = acc


def normalize_rows(g: torch.Tensor) -> torch.Tensor:
    """Each image's error vector scaled to unit L2 norm (all-zero rows stay zero)."""
    norm = g.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, g / norm.clamp_min(1e-30), torch.zeros_like(g))


class S4NNSpikeTimes(torch.autograd.Function):
    """t_out = exact spike bins of a layer; backward = the S4NN temporal rule (docs/training.md)."""

    @staticmethod
    def forward(ctx, t_in, weights, fact, thresholds):
        out = run_layer(t_in.numpy().astype(np.int16), signs_of(weights), thresholds)
        t_out = torch.from_numpy(out.astype(np.float32))
        ctx.save_for_backward(t_in, t_out, weights)
        ctx.fact_shape = fact.shape
        return t_out

    @staticmethod
    def backward(ctx, grad_t_out):
        t_in, t_out, weights = ctx.saved_tensors
        g = normalize_rows(grad_t_out) / grad_t_out.shape[0]  # per-image unit error, batch mean
        grad_w = np.empty(tuple(weights.shape), np.float32)
        grad_in = np.empty(tuple(t_in.shape), np.float32)
        _temporal_grads(t_in.numpy(), t_out.numpy(), g.numpy().astype(np.float32), weights.detach().numpy(),
                        grad_w, grad_in)
        grad_w = torch.from_numpy(grad_w)
        # fact: mean over (i, j) of e_j [t_i < t_j] sign(w_ij), e = -g  ->  d/dfact = mean(grad_w * sign(w))
        signed = grad_w * torch.from_numpy(signs_of(weights).astype(np.float32))
        grad_fact = signed.mean() if len(ctx.fact_shape) == 0 else signed.mean(dim=0)
        return torch.from_numpy(grad_in), grad_w, grad_fact.reshape(ctx.fact_shape), None


class FiredByDecision(torch.autograd.Function):
    """Exact 0/1 "fired by b*" forward; backward, a triangle of half-width `half_width` centred on the
    crossing u = V - theta = -offset (offset 1/2 for integer potentials, which fire at u >= 0; 0 for real)."""

    @staticmethod
    def forward(ctx, u, fired, half_width, offset):
        ctx.save_for_backward(u)
        ctx.half_width = half_width
        ctx.offset = offset
        return fired

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        surrogate = torch.clamp(1.0 - (u + ctx.offset).abs() / ctx.half_width, min=0.0)
        return grad * surrogate, None, None, None


class SignSTE(torch.autograd.Function):
    """sign(w) (0 -> +1) forward, identity backward (the latent weights are kept inside [-1, 1])."""

    @staticmethod
    def forward(ctx, weights, hard):
        return hard

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def hard_signs(weights: torch.Tensor) -> torch.Tensor:
    """int8 +-1 signs of latent weights as a tensor (0 -> +1), in one numba pass."""
    w = weights.detach()
    if w.dtype != torch.float32 or w.dim() != 2 or not w.is_contiguous():
        return (w >= 0).to(torch.int8) * 2 - 1
    out = np.empty(tuple(w.shape), np.int8)
    kernels.signs_int8(w.numpy(), out)
    return torch.from_numpy(out)


class InputPotentials(torch.autograd.Function):
    """V_j(cut_b) of the first weight layer: sum of sign(w_ij) over inputs with t_i <= cut_b, exact
    integers (as float32) forward; backward, the straight-through sign: d V_bj / d w_ij = [t_i <= cut_b].
    Sparse numba row sums (only the inputs that arrived by the cut) instead of dense matrix products."""

    @staticmethod
    def forward(ctx, weights, in_bins, cut, signs):
        ctx.in_bins, ctx.cut = in_bins, cut
        out = np.empty((in_bins.shape[0], signs.shape[1]), np.float32)
        kernels.potentials_by_bin(in_bins, cut, signs, out)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad):
        grad_w = np.empty((ctx.in_bins.shape[1], grad.shape[1]), np.float32)
        kernels.grad_by_bin(ctx.in_bins, ctx.cut, np.ascontiguousarray(grad.numpy(), np.float32), grad_w)
        return torch.from_numpy(grad_w), None, None, None


class BS4NN(nn.Module):
    """Latent real weights (n_in, n_out) per layer and integer thresholds per neuron.

    thresholds: the integers the forward pass uses (buffers, int32). For rule "s4nn" they follow
    `fact` (per layer or per neuron) as floor(thr / fact) + 1; for rule "decision" hidden layers learn
    a real `threshold_param` per neuron (rounded, clamped to 1 .. n_in + 1) and the output's is fixed.
    """

    def __init__(self, sizes, rule="decision", thr=100.0, fact_init=1.0, per_neuron_fact=False,
                 hidden_thresholds=None, output_threshold=None):
        super().__init__()
        self.sizes = list(sizes)
        self.rule = rule
        self.thr = float(thr)
        self.weights = nn.ParameterList(nn.Parameter(torch.zeros(a, b)) for a, b in zip(sizes[:-1], sizes[1:]))
        n_layers = len(self.weights)
        if rule == "s4nn":
            shape = lambda n: (n,) if per_neuron_fact else ()  # noqa: E731
            self.facts = nn.ParameterList(nn.Parameter(torch.full(shape(n), float(fact_init))) for n in sizes[1:])
        elif rule == "decision":
            self.threshold_params = nn.ParameterList(
                nn.Parameter(torch.full((n_out,), float(hidden_thresholds[k])))
                for k, n_out in enumerate(sizes[1:-1])
            )
            self.register_buffer("output_threshold", torch.tensor(int(output_threshold)))
        else:
            raise ValueError(f"unknown rule {rule!r}: choose 's4nn' or 'decision'")
        for k in range(n_layers):
            self.register_buffer(f"thresholds_{k}", torch.ones(sizes[k + 1], dtype=torch.int32))
        self.refresh_thresholds()

    def thresholds(self, k: int) -> torch.Tensor:
        return getattr(self, f"thresholds_{k}")

    @torch.no_grad()
    def refresh_thresholds(self):
        """Recompute the integer thresholds from the learned parameters (after every update)."""
        for k, n_in in enumerate(self.sizes[:-1]):
            n_out = self.sizes[k + 1]
            if self.rule == "s4nn":
                fact = self.facts[k].detach().double().expand(n_out).tolist()
                values = [threshold_from_fact(self.thr, f, n_in) for f in fact]
            elif k < len(self.sizes) - 2:  # rounding is exact in float32 as in float64 (half to even)
                self.thresholds(k).copy_(self.threshold_params[k].detach().double().round().clamp(1, n_in + 1))
                continue
            else:
                values = [int(self.output_threshold)] * n_out
            self.thresholds(k).copy_(torch.tensor(values, dtype=torch.int32))

    def network(self, input_shape) -> Network:
        layers = tuple(Layer(signs_of(w), self.thresholds(k).numpy()) for k, w in enumerate(self.weights))
        return Network(layers, tuple(input_shape))

    def forward(self, in_bins: torch.Tensor):
        """Exact forward on input bins (B, n_in) int16. Returns (spike bins per layer as float tensors,
        the decision potentials V(b*) (B, n_classes), differentiable for rule "decision", and t*)."""
        if self.rule == "s4nn":
            times = [in_bins.float()]
            for k, w in enumerate(self.weights):
                times.append(S4NNSpikeTimes.apply(times[-1], w, self.facts[k], self.thresholds(k).numpy()))
            t_star = times[-1].min(dim=1).values
            return times[1:], None, t_star
        return self._forward_decision(in_bins)

    def _forward_decision(self, in_bins):
        signs = [hard_signs(w) for w in self.weights]
        bins = in_bins.numpy().astype(np.int16)
        dtype = kernels.accumulator_dtype(max(self.sizes[:-1]))
        spikes = tuple(np.empty((bins.shape[0], n), np.int16) for n in self.sizes[1:])
        decision = np.empty(bins.shape[0], np.int16)
        t_star = np.empty(bins.shape[0], np.int16)
        potentials = np.empty((bins.shape[0], self.sizes[-1]), np.int32)
        kernels.forward(bins, tuple(s.numpy() for s in signs),
                        tuple(self.thresholds(k).numpy().astype(dtype) for k in range(len(signs))),
                        spikes, decision, t_star, potentials, False)
        t_star_t = torch.from_numpy(t_star.astype(np.int64))
        b_star = torch.where(t_star_t < T_MAX, t_star_t - 1, torch.full_like(t_star_t, T_MAX - 1))
        # Layer k's events that arrived by the decision bin b* feed the next layer's V(b*); those that
        # arrived by b* - 1 decide whether its neurons fired by b*. Both are exact 0/1 forward; backward,
        # a hidden neuron's arrival flows through the surrogate of its own potential at b* - 1 (a
        # deeper layer's "by b* - 1" reuses the same surrogate, one bin early). The first layer's inputs
        # are data: its potentials are sparse sums over the pixels that arrived by the cut.
        last = len(self.weights) - 1

        def summed(k, arrived_by, cut):
            if k == 0:
                return InputPotentials.apply(self.weights[0], bins, np.ascontiguousarray(cut.numpy()), signs[0].numpy())
            return arrived_by @ SignSTE.apply(self.weights[k], signs[k].float())

        activity = before = None
        for k in range(last):
            u = summed(k, before, b_star - 1) - (
                self.threshold_params[k] + (self.thresholds(k).float() - self.threshold_params[k]).detach())
            hidden = torch.from_numpy(spikes[k].astype(np.int64))
            activity = FiredByDecision.apply(u, (hidden <= b_star[:, None]).float(), self.surrogate_half_width, 0.5)
            before = FiredByDecision.apply(u, (hidden <= (b_star - 1)[:, None]).float(), self.surrogate_half_width, 0.5)
        logits = summed(last, activity, b_star)
        return [torch.from_numpy(s.astype(np.float32)) for s in spikes], logits, t_star_t.float()

    surrogate_half_width = 4.0


class ClippedAdam(torch.optim.Optimizer):
    """Adam (no weight decay, no amsgrad) whose update and clip to [-clip, clip] (per group; None: no clip)
    run as one numba pass per parameter (`kernels.adam_update`), on CPU float32 contiguous parameters.
    State per parameter as torch's Adam names it: step, exp_avg, exp_avg_sq (tensors; checkpoints load them
    with weights_only=True)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, clip=None):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "clip": clip})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            clip = group["clip"]
            lo, hi = (-np.inf, np.inf) if clip is None else (-float(clip), float(clip))
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.dtype != torch.float32 or not p.is_contiguous():
                    raise ValueError("ClippedAdam needs contiguous float32 CPU parameters")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = float(state["step"])
                kernels.adam_update(p.view(-1).numpy(), p.grad.contiguous().view(-1).numpy(),
                                    state["exp_avg"].view(-1).numpy(), state["exp_avg_sq"].view(-1).numpy(),
                                    np.float32(group["lr"]), np.float32(beta1), np.float32(beta2),
                                    np.float32(group["eps"]), np.float32(1 - beta1 ** t),
                                    np.float32(np.sqrt(1 - beta2 ** t)), np.float32(lo), np.float32(hi))
        return loss
