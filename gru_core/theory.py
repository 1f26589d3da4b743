r"""The signal gain of the untrained network: the largest Lyapunov exponent of its recurrence.

Whether a signal (forward) or a gradient (backward) survives many steps at initialisation is
a property of the recurrence alone, before any training (d2l: every weight N(0, 0.01^2)).
The recurrence, driven by the corpus's own characters::

    H_t = f(X_t, H_{t-1}),   H_0 = 0                     (LSTM: the state is (H_t, C_t))

where X_t is the one-hot row of the t-th character of the training text and f is the cell of
``gru_core.model.cells`` (GRU in the d2l convention by default; tanh RNN; LSTM). Its Jacobian
J_t = dH_t/dH_{t-1} (H x H) carries a small change of the state one step on: a change v at
step s reaches step t as J_t ... J_{s+1} v, and a gradient g at step t flows back to step s as
J_{s+1}^T ... J_t^T g (the same product transposed, with the same singular values). The
largest Lyapunov exponent (natural log, per time step)

    lambda = lim_{T -> inf} (1/T) log || J_T ... J_1 v_0 ||          (almost every v_0)

is the growth rate of that product along its most expanding direction. **lambda < 0**: signals
and gradients shrink about e^lambda per step (the gradient k steps back is about e^{k lambda}
of its size: vanishing; the network forgets its input). **lambda > 0**: they grow about
e^lambda per step (exploding gradients; chaotic forward dynamics). lambda = 0 is the *edge of
chaos*: the init std at which it happens (``edge_of_chaos``) is where theory puts the turn of
a trainability map from vanishing to exploding.

Method (Benettin et al. 1980): a tangent v carried along the trajectory by Jacobian-vector
products and renormalised every step, so the product never under- or overflows::

    u_t = J_t v_{t-1},    g_t = log ||u_t||,    v_t = u_t / ||u_t||
    lambda ~ (1 / steps) * sum of g_t over t = burn_in + 1 .. burn_in + steps

The first ``burn_in`` steps let v_0 (random, unit norm) turn towards the most expanding
direction and H leave H_0 = 0; they are not averaged. The JVPs are the cells' exact
derivatives (``d`` is the tangent of what follows; sigma' = sigma (1 - sigma) and
tanh' = 1 - tanh^2 are written out)::

    GRU    dZ = Z (1 - Z) * (v W_hz),   dR = R (1 - R) * (v W_hr)
      d2l:    dH~ = (1 - H~^2) * ((dR * H_{t-1} + R * v) W_hh)
      cudnn:  dH~ = (1 - H~^2) * (dR * (H_{t-1} W_hh + b_hh) + R * (v W_hh))
           u = Z * v + dZ * (H_{t-1} - H~) + (1 - Z) * dH~
           (half a GRU: Z = 0, dZ = 0 without the update gate; R = 1, dR = 0 without reset)
    RNN    u = (1 - H_t^2) * (v W_hh)
    LSTM   tangent (v, w) of (H, C):  dG = G (1 - G) * (v W_hG) for G in I, F, O,
           dC~ = (1 - C~^2) * (v W_hc),   w' = dF * C_{t-1} + F * w + dI * C~ + I * dC~,
           v' = dO * tanh(C_t) + O * (1 - tanh^2(C_t)) * w'

with Z, R, H~ (the candidate state) and I, F, O, C~ as ``cells.py`` names them; ``*`` is the
elementwise product, rows are states. ``tests/test_theory.py`` holds them to the engine's own
forward pass (finite differences and ``torch.func.jvp``). A tangent that becomes exactly 0
(every unit saturated, in float32) gives lambda = -inf.

Weights and randomness: the weights are the engine's own draw (``build_model``, by the rule
of ``model/init.py``, for seeds ``seed .. seed + seeds - 1``), so the exponent of seed s
belongs to the run, or the map cell, with that seed; the seeds are one batch (a leading axis
K, as in the step). Each seed also reads its own stretch of the text (a random offset, the
text cycled if too short) and draws its own v_0, from its own ``torch.Generator`` seeded
``seed + PROBE_STREAM`` (never the process-wide generator, and not the weights' stream). It
runs on the CPU in float32, like the engine, the log-norms summed in float64. The cost is
two small matrix products per step (``benchmarks/edge_of_chaos.py`` says how long, next to
training a map cell).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from gru_core.config import GRU_MODELS, GRU_VARIANTS, MODELS, TrainConfig
from gru_core.model.cells import build_model

LYAPUNOV_MODELS = MODELS  # the GRU, its halves, the RNN and the LSTM
MODEL_KINDS = ("gru*/d2l", "gru*/cudnn", "rnn", "lstm")  # (model/gru_variant) tangent_step covers
PROBE_STREAM = 2**32  # the probe generator's seed offset: its draws are not the weights' draws
DTYPE = torch.float32  # the engine's dtype; the tests use float64

State = tuple[Tensor, ...]  # (K, 1, H) each: (H,) or, for the LSTM, (H, C)
# Step t of the recurrence with its JVP: (t, state, tangent) -> (next state, u_t = J_t tangent)
StepFn = Callable[[int, State, State], tuple[State, State]]


def initial_weights(
    model: str,
    hidden_size: int,
    init_std: float,
    vocab_size: int,
    *,
    seeds: int = 3,
    seed: int = 0,
    gru_variant: str = "d2l",
    dtype: torch.dtype = DTYPE,
) -> dict[str, Tensor]:
    """The engine's initial weights for seeds ``seed .. seed + seeds - 1``: name -> (K, ...)
    (``W_xz``: (K, V, H), ``b_z``: (K, H), ...), as a run with that seed starts."""
    base = TrainConfig(model=model, gru_variant=gru_variant, hidden_size=hidden_size)
    configs = [base.replace(init_std=init_std, seed=seed + k) for k in range(seeds)]
    members = [dict(build_model(c, vocab_size).named_parameters()) for c in configs]
    return {n: torch.stack([m[n].detach() for m in members]).to(dtype) for n in members[0]}


def tangent_step(
    model: str, weights: dict[str, Tensor], inputs: Tensor, gru_variant: str = "d2l"
) -> StepFn:
    """Step t of ``model``'s recurrence driven by ``inputs`` (T, K) token ids, with its JVP
    (module docstring), for weights with a leading seed axis K (``initial_weights``)."""
    if model in GRU_MODELS and gru_variant in GRU_VARIANTS:
        return _gru_step(weights, inputs, gru_variant)
    if model in ("rnn", "lstm"):
        return (_rnn_step if model == "rnn" else _lstm_step)(weights, inputs)
    raise ValueError(f"model={model!r}, gru_variant={gru_variant!r}: not one of {MODEL_KINDS}")


def _rows(W: dict[str, Tensor], gates: str, inputs: Tensor, biases: tuple[str, ...]) -> Tensor:
    """X_t W_xg + b for each gate g and its bias b, side by side, for every step, as row
    gathers: (T, K, 1, len(gates) H)."""
    k = torch.arange(inputs.shape[1])
    parts = []
    for g, b in zip(gates, biases, strict=True):
        # (T, K, H): X_t W_xg, member k reading inputs[:, k]
        parts.append(W[f"W_x{g}"][k, inputs] + W[b])
    return torch.cat(parts, dim=-1).unsqueeze(2)


def _both(H: Tensor, v: Tensor, W_h: Tensor) -> tuple[Tensor, Tensor]:
    """(H W_h, v W_h) in one batched product: the state and its tangent as two rows."""
    HW = torch.bmm(torch.cat((H, v), dim=1), W_h)
    return HW[:, :1], HW[:, 1:]


def _gru_step(W: dict[str, Tensor], inputs: Tensor, variant: str) -> StepFn:
    d2l, gates = variant == "d2l", "".join(g for g in "zr" if f"W_h{g}" in W)  # a half: z or r
    X_zr = _rows(W, gates, inputs, tuple(f"b_{g}" for g in gates))  # X W_xz + b_z | X W_xr + b_r
    X_h = _rows(W, "h", inputs, ("b_h" if d2l else "b_xh",))  # X W_xh + b_h (or b_xh)
    W_zr, W_hh = torch.cat([W[f"W_h{g}"] for g in gates], dim=2), W["W_hh"]
    b_hh = None if d2l else W["b_hh"].unsqueeze(1)
    n = W_hh.shape[1]

    def step(t: int, state: State, tangent: State) -> tuple[State, State]:
        (H,), (v,) = state, tangent
        HW, vW = _both(H, v, W_zr)
        ZR = torch.sigmoid(X_zr[t] + HW)  # Z | R (or one of them)
        dZR = ZR * (1 - ZR) * vW  # dZ | dR
        zero, one = torch.zeros_like(H), torch.ones_like(H)  # Z = 0 and R = 1 where absent
        Z, dZ = (ZR[..., :n], dZR[..., :n]) if "z" in gates else (zero, zero)
        R, dR = (ZR[..., -n:], dZR[..., -n:]) if "r" in gates else (one, zero)
        if d2l:
            # H~ = tanh(X W_xh + (R * H) W_hh + b_h): reset before W_hh
            RHW, dRHW = _both(R * H, dR * H + R * v, W_hh)
            H_tilde = torch.tanh(X_h[t] + RHW)
        else:
            # H~ = tanh(X W_xh + b_xh + R * (H W_hh + b_hh)): reset after W_hh
            HW, vW = _both(H, v, W_hh)
            HW = HW + b_hh
            H_tilde = torch.tanh(X_h[t] + R * HW)
            dRHW = dR * HW + R * vW
        dH_tilde = (1 - H_tilde**2) * dRHW
        # H_t = Z * H + (1 - Z) * H~ = H~ + Z * (H - H~), and its tangent
        gap = H - H_tilde
        u = Z * v + dZ * gap + (1 - Z) * dH_tilde
        return (H_tilde + Z * gap,), (u,)

    return step


def _rnn_step(W: dict[str, Tensor], inputs: Tensor) -> StepFn:
    X_h, W_hh = _rows(W, "h", inputs, ("b_h",)), W["W_hh"]

    def step(t: int, state: State, tangent: State) -> tuple[State, State]:
        (H,), (v,) = state, tangent
        HW, vW = _both(H, v, W_hh)
        # H_t = tanh(X W_xh + H W_hh + b_h)
        H = torch.tanh(X_h[t] + HW)
        return (H,), ((1 - H**2) * vW,)

    return step


def _lstm_step(W: dict[str, Tensor], inputs: Tensor) -> StepFn:
    X_all = _rows(
        W, "ifoc", inputs, tuple(f"b_{g}" for g in "ifoc")
    )  # X W_xg + b_g for g = i, f, o, c
    W_all = torch.cat([W[f"W_h{g}"] for g in "ifoc"], dim=2)
    n = W_all.shape[1]

    def step(t: int, state: State, tangent: State) -> tuple[State, State]:
        (H, C), (v, w) = state, tangent
        HW, vW = _both(H, v, W_all)
        pre = X_all[t] + HW
        IFO = torch.sigmoid(pre[..., : 3 * n])
        dIFO = IFO * (1 - IFO) * vW[..., : 3 * n]
        C_tilde = torch.tanh(pre[..., 3 * n :])
        dC_tilde = (1 - C_tilde**2) * vW[..., 3 * n :]
        (I, F, O), (dI, dF, dO) = IFO.split(n, dim=-1), dIFO.split(n, dim=-1)
        # C_t = F * C + I * C~, H_t = O * tanh(C_t), and their tangents
        C_next = F * C + I * C_tilde
        w_next = dF * C + F * w + dI * C_tilde + I * dC_tilde
        tanh_C = torch.tanh(C_next)
        v_next = dO * tanh_C + O * (1 - tanh_C**2) * w_next
        return (O * tanh_C, C_next), (v_next, w_next)

    return step


def log_growth(step: StepFn, steps: int, state: State, tangent: State) -> Tensor:
    """g_t = log ||J_t v_{t-1}|| for t = 1..steps, the tangent renormalised every step:
    (steps, K) float64. ``state`` and ``tangent`` are tuples of (K, 1, H), the tangent of unit
    norm per member (the norm is over all of a member's state tensors together)."""
    norms = []
    for t in range(steps):
        state, u = step(t, state, tangent)
        flat = u[0] if len(u) == 1 else torch.cat(u, dim=2)
        norm = torch.linalg.vector_norm(flat, dim=(1, 2), keepdim=True)  # (K, 1, 1)
        norms.append(norm)
        # v_t = u_t / ||u_t||; a tangent that is exactly 0 stays 0 (and its g_t is -inf)
        scale = 1 / norm.clamp_min(torch.finfo(norm.dtype).tiny)
        tangent = tuple(part * scale for part in u)
    return torch.stack(norms).view(steps, -1).to(torch.float64).log()


def _probes(tokens: Tensor, T: int, seeds: range, shape: tuple[int, int]) -> tuple[Tensor, State]:
    """Each seed's text (T, K) and unit tangent v_0 (``shape`` = (parts, H): a tuple of parts
    tensors (K, 1, H)), drawn from the seed's own probe generator."""
    N, columns, tangents = tokens.shape[0], [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(s + PROBE_STREAM)
        offset = int(torch.randint(max(N - T, 0) + 1, (1,), generator=gen))
        columns.append(tokens[(offset + torch.arange(T)) % N])  # cycled if too short
        v0 = torch.randn(shape, generator=gen)
        tangents.append((v0 / torch.linalg.vector_norm(v0)).to(DTYPE))
    v = torch.stack(tangents)  # (K, parts, H)
    return torch.stack(columns, dim=1), tuple(v[:, i : i + 1] for i in range(shape[0]))


def _check(tokens: Tensor, vocab_size: int, **counts: int) -> None:
    for name, value in counts.items():
        low = 0 if name == "burn_in" else 1
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} must be an integer >= {low}")
    if tokens.ndim != 1 or tokens.numel() == 0 or tokens.dtype != torch.int64:
        raise ValueError(f"tokens must be a non-empty 1-D int64 tensor, not {tuple(tokens.shape)}")
    if int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size:
        raise ValueError(f"tokens must lie in [0, vocab_size={vocab_size})")


def lyapunov_exponents(
    model: str,
    hidden_size: int,
    init_std: float,
    tokens: Tensor,
    vocab_size: int,
    *,
    steps: int = 300,
    burn_in: int = 50,
    seeds: int = 3,
    seed: int = 0,
    gru_variant: str = "d2l",
) -> Tensor:
    """lambda of each seed's initial network (module docstring): (seeds,) float64."""
    if model not in LYAPUNOV_MODELS:
        raise ValueError(f"model={model!r} is not one of {', '.join(LYAPUNOV_MODELS)}")
    _check(tokens, vocab_size, steps=steps, burn_in=burn_in, seeds=seeds)
    weights = initial_weights(
        model, hidden_size, init_std, vocab_size, seeds=seeds, seed=seed, gru_variant=gru_variant
    )
    parts, L = (2 if model == "lstm" else 1), burn_in + steps
    inputs, tangent = _probes(tokens.cpu(), L, range(seed, seed + seeds), (parts, hidden_size))
    state = tuple(torch.zeros(seeds, 1, hidden_size, dtype=DTYPE) for _ in range(parts))
    g = log_growth(tangent_step(model, weights, inputs, gru_variant), L, state, tangent)
    return g[burn_in:].mean(dim=0)


def lyapunov_exponent(
    model: str,
    hidden_size: int,
    init_std: float,
    tokens: Tensor,
    vocab_size: int,
    *,
    steps: int = 300,
    burn_in: int = 50,
    seeds: int = 3,
    seed: int = 0,
    gru_variant: str = "d2l",
) -> float:
    """The largest Lyapunov exponent lambda (per step, natural log) of the untrained
    ``model`` (one of config.MODELS) at ``hidden_size`` and ``init_std``, driven by ``tokens``
    ((N,) int64 ids of the training text, < ``vocab_size``), averaged over ``seeds`` seeds.
    lambda < 0: signals and gradients vanish through time; lambda > 0: they explode."""
    options = {"steps": steps, "burn_in": burn_in, "seeds": seeds, "seed": seed}
    exponents = lyapunov_exponents(
        model, hidden_size, init_std, tokens, vocab_size, gru_variant=gru_variant, **options
    )
    return float(exponents.mean())


def edge_of_chaos(
    model: str,
    hidden_size: int,
    tokens: Tensor,
    vocab_size: int,
    *,
    low: float = 1e-3,
    high: float = 10.0,
    grid: int = 9,
    rtol: float = 0.01,
    steps: int = 300,
    burn_in: int = 50,
    seeds: int = 3,
    seed: int = 0,
    gru_variant: str = "d2l",
) -> float | None:
    """The init std in [low, high] where lambda first crosses 0 going up, or None if lambda
    is >= 0 at ``low`` or < 0 up to ``high``.

    ``grid`` init stds spaced evenly in log from ``low`` to ``high`` are tried in order up
    to the first with lambda >= 0; the bracket is then halved in log std until its ends are
    within a factor 1 + ``rtol``, and the crossing interpolated linearly in log std. The
    seeds (hence the weights up to their scale, and the texts) are the same at every std, so
    lambda(std) is one smooth curve and the bisection is deterministic."""
    if not 0 < low < high or grid < 2 or rtol <= 0:
        raise ValueError(f"need 0 < low < high, grid >= 2, rtol > 0 (got {low}, {high}, {grid})")
    options = {"steps": steps, "burn_in": burn_in, "seeds": seeds, "seed": seed}

    def lam(std: float) -> float:
        args = (model, hidden_size, std, tokens, vocab_size)
        return lyapunov_exponent(*args, gru_variant=gru_variant, **options)

    ratio = math.log(high / low) / (grid - 1)
    lo, lam_lo = low, lam(low)
    if lam_lo >= 0:
        return None
    for i in range(1, grid):
        hi = high if i == grid - 1 else low * math.exp(i * ratio)
        lam_hi = lam(hi)
        if lam_hi >= 0:
            break
        lo, lam_lo = hi, lam_hi
    else:
        return None
    while hi / lo > 1 + rtol:
        mid = math.sqrt(lo * hi)
        lam_mid = lam(mid)
        if lam_mid >= 0:
            hi, lam_hi = mid, lam_mid
        else:
            lo, lam_lo = mid, lam_mid
    # lambda linear in log std across the last bracket
    frac = 0.0 if math.isinf(lam_lo) else -lam_lo / (lam_hi - lam_lo)
    return float(lo * (hi / lo) ** frac)
