r"""Recurrent language models written from scratch: GRU (two conventions), tanh RNN, LSTM.

Every model maps integer tokens to next-token logits and, when asked, returns its gates so the
dashboard can plot them. Parameters carry the names of the maths (``W_xz``, ``W_hz``, ``b_z``,
...), initialised by the one rule of ``model/init.py`` (weights N(0, init_std^2), biases zero,
as in d2l) from the generator passed in; ``build_model`` passes the run's own.

GRU, per time step t (d2l section 10.2; Cho et al. 2014)::

    Z_t       = sigmoid(X_t W_xz + H_{t-1} W_hz + b_z)                 update gate
    R_t       = sigmoid(X_t W_xr + H_{t-1} W_hr + b_r)                 reset gate
    d2l:    H_tilde_t = tanh(X_t W_xh + (R_t * H_{t-1}) W_hh + b_h)
    cudnn:  H_tilde_t = tanh(X_t W_xh + b_xh + R_t * (H_{t-1} W_hh + b_hh))
    H_t       = Z_t * H_{t-1} + (1 - Z_t) * H_tilde_t
    O_t       = H_t W_hq + b_q                                          logits

where ``Z_t`` is the update gate, ``R_t`` the reset gate, ``H_tilde_t`` the candidate state and
``*`` the elementwise product. Conventions:

- **Z keeps the old state**: Z_t = 1 copies H_{t-1} through unchanged (as in d2l and
  ``torch.nn.GRU``; some code, e.g. makemore, flips the roles of Z and 1 - Z).
- **Where the reset gate applies**: variant ``'d2l'`` resets the state *before* the recurrent
  matrix, ``(R * H) W_hh``; variant ``'cudnn'`` resets *after* it, ``R * (H W_hh + b_hh)``,
  which is what ``torch.nn.GRU`` and cuDNN compute. The two are different functions of the
  same parameters; the cudnn variant splits the candidate bias into ``b_xh`` and ``b_hh``.

Half a GRU (d2l's exercise 4), the same cell with one gate fixed and its parameters absent:

- ``'gru_reset_only'``: Z_t = 0, so ``H_t = H_tilde_t`` (no ``W_xz, W_hz, b_z``);
- ``'gru_update_only'``: R_t = 1, so ``H_tilde_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)``
  (cudnn: ``+ b_xh + b_hh``; the two conventions then differ only by the bias split; no
  ``W_xr, W_hr, b_r``).

RNN: ``H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)``.
LSTM: ``I, F, O = sigmoid(X W_x{i,f,o} + H W_h{i,f,o} + b_{i,f,o})``,
``C_tilde = tanh(X W_xc + H W_hc + b_c)``, ``C_t = F * C_{t-1} + I * C_tilde``,
``H_t = O * tanh(C_t)``.

X_t is the one-hot row of token x_t, so ``X_t W_xz`` is row x_t of ``W_xz``: the models
gather rows (``W_xz[x_t]``) instead of multiplying by one-hot vectors. Same maths, no
V-wide matmul.

Inputs: ``tokens`` (B, T) int64, ``state`` as returned by ``init_state`` (or None = zeros).
Outputs: ``ForwardOutput(logits (T, B, V), state, gates, hiddens)``. ``gates`` maps a gate
name to a (T, B, H) tensor when ``trace=True`` (GRU: Z, R, H_tilde; LSTM: I, F, O, C_tilde;
the halves drop Z or R; the plain RNN has none; see ``gates.py``), else is None.
``hiddens`` is H_1..H_T, (T, B, H).
Logits are time-major like d2l's ``torch.cat(outputs)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from gru_core.config import GRU_MODELS, TrainConfig
from gru_core.model.gates import MODEL_GATES
from gru_core.model.init import initial_parameters, run_generator

State = tuple[Tensor, ...]


class ForwardOutput(NamedTuple):
    logits: Tensor  # (T, B, V)
    state: State  # (H_T,) or, for the LSTM, (H_T, C_T)
    gates: dict[str, Tensor] | None  # gate name -> (T, B, H), only when trace=True
    hiddens: Tensor  # (T, B, H): H_1..H_T, the states the output layer reads


class RecurrentLM(nn.Module):
    """Shared parts: parameter creation, state, output layer and the time loop."""

    gate_names: tuple[str, ...] = ()
    state_size = 1  # tensors in the state tuple

    def __init__(self, vocab_size: int, hidden_size: int, init_std: float) -> None:
        super().__init__()
        self.vocab_size, self.hidden_size, self.init_std = vocab_size, hidden_size, init_std
        self.W_hq = self._weight(hidden_size, vocab_size)
        self.b_q = self._bias(vocab_size)

    def _weight(self, rows: int, cols: int) -> nn.Parameter:
        return nn.Parameter(torch.empty(rows, cols))  # values from reset_parameters

    def _bias(self, size: int) -> nn.Parameter:
        return nn.Parameter(torch.empty(size))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Set every parameter by ``init.initial_parameters`` (weights N(0, init_std^2) in
        parameter order, biases 0) from ``generator``; None draws from the process-wide
        generator (tests and notebooks that seed it; the engine always passes its own, see
        ``build_model``). A model on the meta device (names and shapes only) draws nothing."""
        params = dict(self.named_parameters())
        if self.W_hq.is_meta:
            return
        shapes = ((n, p.shape) for n, p in params.items())
        values = initial_parameters(shapes, self.init_std, generator or torch.default_generator)
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(values[name])

    def init_state(self, batch_size: int) -> State:
        p = self.W_hq
        return tuple(
            torch.zeros(batch_size, self.hidden_size, device=p.device, dtype=p.dtype)
            for _ in range(self.state_size)
        )

    def forward(
        self,
        tokens: Tensor,
        state: State | None = None,
        trace: bool = False,
        h_probe: Tensor | None = None,
    ) -> ForwardOutput:
        """Run T steps. ``h_probe`` (T, B, H) of zeros, when given, is added to every H_t so
        that autograd's gradient on it is dL/dH_t (the gradient flow through time)."""
        if state is None:
            state = self.init_state(tokens.shape[0])
        steps = tokens.T  # (T, B): iterate over time like d2l
        x_proj = self._input_projection(steps)  # name -> (T, B, H)
        hiddens: list[Tensor] = []
        traces: dict[str, list[Tensor]] = {name: [] for name in self.gate_names}
        for t in range(steps.shape[0]):
            state, gates = self._cell({k: v[t] for k, v in x_proj.items()}, state)
            if h_probe is not None:
                state = (state[0] + h_probe[t], *state[1:])
            hiddens.append(state[0])
            if trace:
                for name in self.gate_names:
                    traces[name].append(gates[name])
        H_all = torch.stack(hiddens)  # (T, B, H)
        logits = H_all @ self.W_hq + self.b_q  # O_t = H_t W_hq + b_q
        gates_out = {k: torch.stack(v) for k, v in traces.items()} if trace else None
        return ForwardOutput(logits, state, gates_out, H_all)

    def _input_projection(self, steps: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def _cell(self, x: dict[str, Tensor], state: State) -> tuple[State, dict[str, Tensor]]:
        raise NotImplementedError


class GRUScratch(RecurrentLM):
    """Gated recurrent unit, or half of one (``model`` 'gru_reset_only' / 'gru_update_only');
    see the module docstring for the equations and conventions."""

    gate_names = MODEL_GATES["gru"]

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        init_std: float = 0.01,
        variant: str = "d2l",
        generator: torch.Generator | None = None,
        model: str = "gru",
    ) -> None:
        super().__init__(vocab_size, hidden_size, init_std)
        if variant not in ("d2l", "cudnn"):
            raise ValueError(f"gru_variant={variant!r} is not one of d2l, cudnn")
        if model not in GRU_MODELS:
            raise ValueError(f"model={model!r} is not one of {', '.join(GRU_MODELS)}")
        self.variant, self.model = variant, model
        self.gate_names = MODEL_GATES[model]
        self.has_z, self.has_r = "Z" in self.gate_names, "R" in self.gate_names
        V, Hn = vocab_size, hidden_size
        if self.has_z:
            self.W_xz, self.W_hz = self._weight(V, Hn), self._weight(Hn, Hn)
            self.b_z = self._bias(Hn)
        if self.has_r:
            self.W_xr, self.W_hr = self._weight(V, Hn), self._weight(Hn, Hn)
            self.b_r = self._bias(Hn)
        self.W_xh, self.W_hh = self._weight(V, Hn), self._weight(Hn, Hn)
        if variant == "d2l":
            self.b_h = self._bias(Hn)
        else:
            self.b_xh, self.b_hh = self._bias(Hn), self._bias(Hn)
        self.reset_parameters(generator)

    def _input_projection(self, steps: Tensor) -> dict[str, Tensor]:
        # X_t W_x* as a row gather: the same maths as the one-hot product.
        names = "zrh" if self.has_z and self.has_r else "zh" if self.has_z else "rh"
        return {g: getattr(self, f"W_x{g}")[steps] for g in names}

    def _cell(self, x: dict[str, Tensor], state: State) -> tuple[State, dict[str, Tensor]]:
        (H,) = state
        gates: dict[str, Tensor] = {}
        if self.has_z:
            gates["Z"] = torch.sigmoid(x["z"] + H @ self.W_hz + self.b_z)
        if self.has_r:
            gates["R"] = torch.sigmoid(x["r"] + H @ self.W_hr + self.b_r)
        R = gates.get("R")  # None: R = 1 (update-only)
        if self.variant == "d2l":
            # H_tilde = tanh(X W_xh + (R * H) W_hh + b_h): reset before W_hh
            RH = H if R is None else R * H
            H_tilde = torch.tanh(x["h"] + RH @ self.W_hh + self.b_h)
        else:
            # H_tilde = tanh(X W_xh + b_xh + R * (H W_hh + b_hh)): reset after W_hh
            G_h = H @ self.W_hh + self.b_hh
            H_tilde = torch.tanh(x["h"] + self.b_xh + (G_h if R is None else R * G_h))
        gates["H_tilde"] = H_tilde
        if self.has_z:
            # H = Z * H_prev + (1 - Z) * H_tilde: Z keeps the old state
            Z = gates["Z"]
            H = Z * H + (1 - Z) * H_tilde
        else:
            H = H_tilde  # Z = 0 (reset-only): the candidate is the state
        return (H,), gates


class RNNScratch(RecurrentLM):
    """Vanilla tanh RNN: H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)."""

    gate_names = MODEL_GATES["rnn"]

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(vocab_size, hidden_size, init_std)
        self.W_xh = self._weight(vocab_size, hidden_size)
        self.W_hh = self._weight(hidden_size, hidden_size)
        self.b_h = self._bias(hidden_size)
        self.reset_parameters(generator)

    def _input_projection(self, steps: Tensor) -> dict[str, Tensor]:
        return {"h": self.W_xh[steps]}

    def _cell(self, x: dict[str, Tensor], state: State) -> tuple[State, dict[str, Tensor]]:
        (H,) = state
        H = torch.tanh(x["h"] + H @ self.W_hh + self.b_h)
        return (H,), {}


class LSTMScratch(RecurrentLM):
    """Long short-term memory; state is (H, C). Equations in the module docstring."""

    gate_names = MODEL_GATES["lstm"]
    state_size = 2

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(vocab_size, hidden_size, init_std)
        V, Hn = vocab_size, hidden_size
        self.W_xi, self.W_hi, self.b_i = self._weight(V, Hn), self._weight(Hn, Hn), self._bias(Hn)
        self.W_xf, self.W_hf, self.b_f = self._weight(V, Hn), self._weight(Hn, Hn), self._bias(Hn)
        self.W_xo, self.W_ho, self.b_o = self._weight(V, Hn), self._weight(Hn, Hn), self._bias(Hn)
        self.W_xc, self.W_hc, self.b_c = self._weight(V, Hn), self._weight(Hn, Hn), self._bias(Hn)
        self.reset_parameters(generator)

    def _input_projection(self, steps: Tensor) -> dict[str, Tensor]:
        return {g: getattr(self, f"W_x{g}")[steps] for g in "ifoc"}

    def _cell(self, x: dict[str, Tensor], state: State) -> tuple[State, dict[str, Tensor]]:
        H, C = state
        I = torch.sigmoid(x["i"] + H @ self.W_hi + self.b_i)
        F = torch.sigmoid(x["f"] + H @ self.W_hf + self.b_f)
        O = torch.sigmoid(x["o"] + H @ self.W_ho + self.b_o)
        C_tilde = torch.tanh(x["c"] + H @ self.W_hc + self.b_c)
        C = F * C + I * C_tilde
        H = O * torch.tanh(C)
        return (H, C), {"I": I, "F": F, "O": O, "C_tilde": C_tilde}


def build_model(
    config: TrainConfig, vocab_size: int, generator: torch.Generator | None = None
) -> RecurrentLM:
    """The model a config asks for, on the CPU in float32 (move it with ``.to``), its weights
    drawn from ``generator`` (default: the run's own, ``init.run_generator(config.seed)``;
    never the process-wide one). Under ``torch.device("meta")`` it draws nothing."""
    gen = run_generator(config.seed) if generator is None else generator
    H, std = config.hidden_size, config.init_std
    if config.model in GRU_MODELS:
        return GRUScratch(vocab_size, H, std, config.gru_variant, gen, config.model)
    if config.model == "rnn":
        return RNNScratch(vocab_size, H, std, generator=gen)
    return LSTMScratch(vocab_size, H, std, generator=gen)
