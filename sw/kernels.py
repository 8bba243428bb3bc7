"""numba kernels of the exact integer forward pass, shared by the fast reference and the trainer.

Event-driven per image: input events are bucketed by bin (a counting sort), each non-empty bin adds the
weight rows of its events to the potentials, and only then are the neurons compared (all events of a bin
are summed before any comparison). Empty bins are skipped. Events in bin T_MAX-1 cannot make a neuron fire
(a crossing there gives T_MAX, never), so only the output layer integrates them, for the no-spike fallback.

Signs are int8; potentials and thresholds share `accumulator_dtype(n_in)`, int16 for all but huge layers,
so that the add and compare loops vectorise wide. The compare loop is branch-free for the same reason.
"""
from __future__ import annotations

import numba
import numpy as np

from .semantics import T_MAX

_T_MAX = T_MAX


def accumulator_dtype(n_in: int):
    """The dtype of potentials (-n_in .. n_in) and thresholds (1 .. n_in + 1) of a layer."""
    return np.int16 if n_in + 1 <= np.iinfo(np.int16).max else np.int32


@numba.njit(cache=True, nogil=True, inline="always")
def _layer_one(in_bins, signs, thresholds, out, order, starts, potential, decision_potential, is_output,
               from_pixels):
    """Spike bins (1 .. T_MAX) of one layer for one image, written into `out`. Returns t*.

    With from_pixels, in_bins holds 8-bit pixels p and the input events are at bins 255 - p.

    For the output layer (is_output), `decision_potential` receives V(b*): V(t* - 1), taken at the first
    crossing, or V(T_MAX - 1) when no neuron fires.
    """
    n_in = in_bins.shape[0]
    n_out = signs.shape[1]
    # counting sort of inputs by bin: afterwards the events of bin t are order[starts[t-1]:starts[t]]
    starts[:] = 0
    for i in range(n_in):
        t = _T_MAX - 1 - in_bins[i] if from_pixels else in_bins[i]
        starts[t + 1] += 1
    for t in range(_T_MAX + 1):
        starts[t + 1] += starts[t]
    for i in range(n_in):
        t = _T_MAX - 1 - in_bins[i] if from_pixels else in_bins[i]
        order[starts[t]] = i
        starts[t] += 1
    potential[:] = 0
    out[:] = _T_MAX
    t_star = _T_MAX
    lo = 0
    for t in range(_T_MAX - 1):
        hi = starts[t]
        if lo == hi:
            continue
        for e in range(lo, hi):
            row = signs[order[e]]
            for j in range(n_out):
                potential[j] += row[j]
        lo = hi
        if is_output and t_star == _T_MAX:
            for j in range(n_out):
                if potential[j] >= thresholds[j]:
                    t_star = t + 1
            if t_star < _T_MAX:
                for j in range(n_out):
                    decision_potential[j] = potential[j]
        stamp = np.int16(t + 1)
        for j in range(n_out):
            fire_now = (potential[j] >= thresholds[j]) & (out[j] == _T_MAX)
            out[j] = stamp if fire_now else out[j]
    if is_output and t_star == _T_MAX:
        for e in range(lo, starts[_T_MAX - 1]):  # bin T_MAX-1 only matters for the fallback
            row = signs[order[e]]
            for j in range(n_out):
                potential[j] += row[j]
        for j in range(n_out):
            decision_potential[j] = potential[j]
    return t_star


@numba.njit(cache=True, nogil=True, inline="always")
def _winner(out, potential, t_star):
    """Strict decision: earliest spike, then highest V(t* - 1), then lowest index; with no spike,
    argmax V(T_MAX - 1), lowest index on ties."""
    winner = -1
    for j in range(out.shape[0]):
        if t_star < _T_MAX and out[j] != t_star:
            continue
        if winner < 0 or potential[j] > potential[winner]:
            winner = j
    return winner


@numba.njit(cache=True, parallel=True)
def layer_spike_bins(in_bins, signs, thresholds, out_bins):
    """Spike bins of one layer on a batch.

    in_bins: int16 (B, n_in), bins 0 .. T_MAX (T_MAX = no event); signs: int8 (n_in, n_out) of +-1;
    thresholds: (n_out,) of `accumulator_dtype(n_in)`; out_bins: int16 (B, n_out), receives 1 .. T_MAX.
    """
    for b in numba.prange(in_bins.shape[0]):
        order = np.empty(in_bins.shape[1], np.int32)
        starts = np.empty(_T_MAX + 2, np.int32)
        potential = np.empty(signs.shape[1], thresholds.dtype)
        _layer_one(in_bins[b], signs, thresholds, out_bins[b], order, starts, potential, potential, False, False)


@numba.njit(cache=True, nogil=True, inline="always")
def _image(b, in_bins, signs, thresholds, spikes, decision, first_spike_bin, decision_potentials, from_pixels):
    """The whole network on image b of the batch (see `forward`)."""
    n_layers = len(signs)
    width = in_bins.shape[1]
    n_potentials = 0
    for k in range(n_layers):
        width = max(width, signs[k].shape[0])
        n_potentials = max(n_potentials, signs[k].shape[1])
    last = n_layers - 1
    order = np.empty(width, np.int32)
    starts = np.empty(_T_MAX + 2, np.int32)
    potentials = np.empty(n_potentials, thresholds[0].dtype)
    decided = np.zeros(signs[last].shape[1], decision_potentials.dtype)
    t_star = _T_MAX
    for k in range(n_layers):
        potential = potentials[: signs[k].shape[1]]
        if k == 0:
            t_star = _layer_one(in_bins[b], signs[0], thresholds[0], spikes[0][b], order, starts, potential,
                                decided, k == last, from_pixels)
        else:
            t_star = _layer_one(spikes[k - 1][b], signs[k], thresholds[k], spikes[k][b], order, starts,
                                potential, decided, k == last, False)
    decision[b] = _winner(spikes[last][b], decided, t_star)
    first_spike_bin[b] = t_star
    decision_potentials[b, :] = decided


@numba.njit(cache=True, parallel=True)
def forward(in_bins, signs, thresholds, spikes, decision, first_spike_bin, decision_potentials, from_pixels):
    """The whole network on a batch, images in parallel.

    in_bins: (B, n_in) input spike bins 0 .. T_MAX (int16; T_MAX = no event), or 8-bit pixels (uint8) when
    from_pixels. signs, thresholds and spikes are equal-length tuples over the layers (spikes[k]: int16
    (B, n_out_k)); decision / first_spike_bin: int16 (B,); decision_potentials (B, n_classes) receives
    V_j(b*), with b* = t* - 1, or T_MAX - 1 when no output spiked. The kernel is dtype-generic: the
    binary network runs int8 signs with int16/int32 thresholds and int32 decision potentials; real-valued
    comparison networks (sw/baselines.py) run float32 weights, thresholds and potentials.
    """
    for b in numba.prange(in_bins.shape[0]):
        _image(b, in_bins, signs, thresholds, spikes, decision, first_spike_bin, decision_potentials, from_pixels)


@numba.njit(cache=True, nogil=True)
def forward_serial(in_bins, signs, thresholds, spikes, decision, first_spike_bin, decision_potentials, from_pixels):
    """`forward` on one thread (small training batches, next to torch's own thread pool)."""
    for b in range(in_bins.shape[0]):
        _image(b, in_bins, signs, thresholds, spikes, decision, first_spike_bin, decision_potentials, from_pixels)


# ----------------------------------------------------------------------------- training kernels (first layer)
# The decision rule needs, for the first weight layer, V_j(b) = sum of s_ij over inputs with t_i <= b (one
# cut-off bin b per image) and, backward, the gradient of those potentials with respect to the latent
# weights: sum over images of [t_i <= b] * g_bj. Few inputs fire before the decision (bright pixels), so
# both are sparse row sums instead of dense (B, n_in) @ (n_in, n_out) products.

@numba.njit(cache=True, parallel=True)
def potentials_by_bin(in_bins, cut, signs, out):
    """out[b, j] = sum of signs[i, j] over inputs i with in_bins[b, i] <= cut[b] (exact integers, float32).

    in_bins: int16 (B, n_in); cut: int64 (B,); signs: int8 (n_in, n_out); out: float32 (B, n_out)."""
    n_out = signs.shape[1]
    for b in numba.prange(in_bins.shape[0]):
        acc = np.zeros(n_out, np.int32)
        c = cut[b]
        for i in range(in_bins.shape[1]):
            if in_bins[b, i] <= c:
                row = signs[i]
                for j in range(n_out):
                    acc[j] += row[j]
        for j in range(n_out):
            out[b, j] = acc[j]


@numba.njit(cache=True, parallel=True)
def grad_by_bin(in_bins, cut, g, grad_w):
    """grad_w[i, j] = sum over images b with in_bins[b, i] <= cut[b] of g[b, j] (every row written).

    in_bins: int16 (B, n_in); cut: int64 (B,); g: float32 (B, n_out); grad_w: float32 (n_in, n_out)."""
    n_batch, n_in = in_bins.shape
    n_out = g.shape[1]
    for i in numba.prange(n_in):
        row = grad_w[i]
        for j in range(n_out):
            row[j] = 0.0
        for b in range(n_batch):
            if in_bins[b, i] <= cut[b]:
                gb = g[b]
                for j in range(n_out):
                    row[j] += gb[j]


@numba.njit(cache=True, parallel=True)
def signs_int8(weights, out):
    """out = sign(weights) as int8 +-1, an exact 0 (or -0.0) giving +1 (one pass, rows in parallel)."""
    for i in numba.prange(weights.shape[0]):
        for j in range(weights.shape[1]):
            out[i, j] = 1 if weights[i, j] >= 0 else -1


@numba.njit(cache=True, parallel=True)
def shifted_bins(images, dy, dx, shift, mirror, out):
    """Input spike bins 255 - p of images translated by (dy[n] - shift, dx[n] - shift), zero filled, and
    mirrored left-right where mirror[n] is set.

    images: uint8 (N, h, w); dy, dx: int64 (N,) in 0 .. 2 * shift; mirror: bool (N,); out: int16 (N, h * w).
    Pixel (r, c) of the result is pixel (r + dy - shift, c' + dx - shift) of the image, with c' = w - 1 - c
    when mirrored and c otherwise, or 0 (bin 255) outside it."""
    n, h, w = images.shape
    for b in numba.prange(n):
        oy = dy[b] - shift
        ox = dx[b] - shift
        for r in range(h):
            rr = r + oy
            for c in range(w):
                cc = (w - 1 - c if mirror[b] else c) + ox
                p = images[b, rr, cc] if (0 <= rr < h and 0 <= cc < w) else 0
                out[b, r * w + c] = _T_MAX - 1 - np.int16(p)


@numba.njit(cache=True, parallel=True)
def adam_update(w, g, m, v, lr, beta1, beta2, eps, bias1, bias2_sqrt, lo, hi):
    """One Adam step on a flat float32 parameter, in place, with the result clipped to lo .. hi:
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= (lr / bias1) m / (sqrt(v) / bias2_sqrt + eps).
    One pass over w, g, m and v (torch's Adam followed by clamp_ is several), in float32 throughout (the
    scalars arrive as float32) so that the loop vectorises."""
    step = lr / bias1
    c1 = np.float32(1.0) - beta1
    c2 = np.float32(1.0) - beta2
    inv_b2 = np.float32(1.0) / bias2_sqrt
    for i in numba.prange(w.shape[0]):
        gi = g[i]
        mi = beta1 * m[i] + c1 * gi
        vi = beta2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        wi = w[i] - step * mi / (np.sqrt(vi) * inv_b2 + eps)
        w[i] = min(max(wi, lo), hi)


@numba.njit(cache=True, parallel=True)
def warped_bins(images, matrices, fields, field_of, out):
    """Input spike bins 255 - p of images resampled through affine maps plus displacement fields, bilinear,
    zero outside.

    images: uint8 (N, h, w); matrices: float32 (N, 2, 3), mapping an output pixel (r, c), taken relative
    to the image centre, to its source point: (r_src, c_src) = M[:, :2] @ (r - cy, c - cx) + M[:, 2] +
    (cy, cx) + fields[field_of[n], :, r, c]; fields: float32 (K, 2, h, w) (all zero: a plain affine warp);
    field_of: int64 (N,); out: int16 (N, h * w). The sampled intensity is rounded half up to 0 .. 255."""
    n, h, w = images.shape
    cy = (h - 1) * 0.5
    cx = (w - 1) * 0.5
    for b in numba.prange(n):
        m = matrices[b]
        f = fields[field_of[b]]
        for r in range(h):
            for c in range(w):
                y = r - cy
                x = c - cx
                sy = m[0, 0] * y + m[0, 1] * x + m[0, 2] + cy + f[0, r, c]
                sx = m[1, 0] * y + m[1, 1] * x + m[1, 2] + cx + f[1, r, c]
                y0 = int(np.floor(sy))
                x0 = int(np.floor(sx))
                fy = sy - y0
                fx = sx - x0
                acc = 0.0
                for dy in range(2):
                    yy = y0 + dy
                    if yy < 0 or yy >= h:
                        continue
                    wy = fy if dy else 1.0 - fy
                    for dx in range(2):
                        xx = x0 + dx
                        if xx < 0 or xx >= w:
                            continue
                        wx = fx if dx else 1.0 - fx
                        acc += wy * wx * images[b, yy, xx]
                p = min(255, int(acc + 0.5))
                out[b, r * w + c] = _T_MAX - 1 - np.int16(p)
