r"""The textbook implementation: d2l's from-scratch GRU, written out the way the book writes it.

This is the reference that the fast path (``fused.py`` + ``train.py``) is measured and tested
against: ``tests/test_textbook.py`` holds the two to the same losses and gradients, and
``benchmarks/throughput.py`` times them side by side. It follows the book's structure (d2l
section 10.2 and ``train_ch8``) rather than being fast, so a reader can set it beside the
chapter:

- ``get_params`` draws every weight from N(0, init_std^2) and sets biases to zero;
- ``init_gru_state`` returns a zero state ``(H,)``;
- ``gru`` loops over time with one-hot inputs, a separate matmul per gate and the output layer
  inside the loop, and concatenates the outputs as the book does;
- ``grad_clipping`` rescales all gradients together when their global L2 norm exceeds theta;
- ``sgd`` is the plain update ``W <- W - lr * g / batch_size``;
- ``train_epoch`` is ``train_epoch_ch8`` for a scratch model: a fresh state at the start of the
  epoch (sequential sampling) or of every minibatch (random sampling), the state detached
  between minibatches, autograd for the backward pass.

What differs from the book, on purpose: parameters are a dict of named tensors (never a list
unpacked by position), ``grad_clipping`` returns the norm it measured instead of throwing it
away, and ``train_epoch`` returns the per-minibatch losses instead of printing or plotting.
Nothing here prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gru_core.model.cells import GRUScratch

Params = dict[str, Tensor]
State = tuple[Tensor, ...]

PARAM_NAMES = ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h", "W_hq", "b_q")


def get_params(
    vocab_size: int,
    num_hiddens: int,
    device: str | torch.device,
    init_std: float = 0.01,
    generator: torch.Generator | None = None,
    gates: str = "zr",
) -> Params:
    """The GRU's parameters by name, weights ~ N(0, init_std^2) and biases zero, with gradients.
    ``gates``: the gates it has, 'zr'; 'r' or 'z' for half a GRU (d2l's exercise 4), which
    has no parameters for the gate it lacks.

    Inputs and outputs are one-hot characters, so both have ``vocab_size`` columns. Weights are
    drawn on the CPU (from ``generator`` when given) and then moved to ``device``, so a seed
    gives the same numbers on every device.
    """
    num_inputs = num_outputs = vocab_size

    def normal(shape: tuple[int, int]) -> Tensor:
        return (torch.randn(shape, generator=generator) * init_std).to(device)

    def three() -> tuple[Tensor, Tensor, Tensor]:
        return (
            normal((num_inputs, num_hiddens)),
            normal((num_hiddens, num_hiddens)),
            torch.zeros(num_hiddens, device=device),
        )

    params: Params = {}
    if "z" in gates:
        params["W_xz"], params["W_hz"], params["b_z"] = three()  # update gate
    if "r" in gates:
        params["W_xr"], params["W_hr"], params["b_r"] = three()  # reset gate
    params["W_xh"], params["W_hh"], params["b_h"] = three()  # candidate hidden state
    params["W_hq"] = normal((num_hiddens, num_outputs))  # output layer
    params["b_q"] = torch.zeros(num_outputs, device=device)
    for param in params.values():
        param.requires_grad_(True)
    return params


def init_gru_state(batch_size: int, num_hiddens: int, device: str | torch.device) -> State:
    """The initial state: ``(H,)`` with H of shape (B, H) all zeros."""
    return (torch.zeros((batch_size, num_hiddens), device=device),)


def gru(inputs: Tensor, state: State, params: Params) -> tuple[Tensor, State]:
    r"""Run the GRU over T time steps, one step at a time.

    .. math::

        Z_t = \sigma(X_t W_{xz} + H_{t-1} W_{hz} + b_z)
        R_t = \sigma(X_t W_{xr} + H_{t-1} W_{hr} + b_r)
        \tilde H_t = \tanh(X_t W_{xh} + (R_t \odot H_{t-1}) W_{hh} + b_h)
        H_t = Z_t \odot H_{t-1} + (1 - Z_t) \odot \tilde H_t
        O_t = H_t W_{hq} + b_q

    where Z_t is the update gate, R_t the reset gate, H_tilde_t the candidate state and O_t
    the logits. Conventions (d2l's): Z keeps the old state, and the reset gate applies before
    ``W_hh`` (Cho et al. 2014), unlike ``torch.nn.GRU``, which applies it after.

    Half a GRU (d2l's exercise 4), when ``params`` lacks a gate's parameters: without the
    update gate Z_t = 0, so H_t = H_tilde_t; without the reset gate R_t = 1, so
    H_tilde_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h).

    Inputs: ``inputs`` (T, B, V) one-hot rows, ``state`` ``(H,)`` with H (B, H).
    Outputs: logits (T*B, V), time-major as ``torch.cat`` stacks them, and the state ``(H_T,)``.
    """
    has_z, has_r = "W_xz" in params, "W_xr" in params
    W_xh, W_hh, b_h = params["W_xh"], params["W_hh"], params["b_h"]
    W_hq, b_q = params["W_hq"], params["b_q"]
    (H,) = state
    outputs = []
    for X in inputs:  # X: (B, V), the one-hot inputs at step t
        if has_z:
            Z = torch.sigmoid((X @ params["W_xz"]) + (H @ params["W_hz"]) + params["b_z"])
        if has_r:
            R = torch.sigmoid((X @ params["W_xr"]) + (H @ params["W_hr"]) + params["b_r"])
            H_tilde = torch.tanh((X @ W_xh) + ((R * H) @ W_hh) + b_h)
        else:  # R = 1
            H_tilde = torch.tanh((X @ W_xh) + (H @ W_hh) + b_h)
        H = Z * H + (1 - Z) * H_tilde if has_z else H_tilde  # Z = 0: H = H_tilde
        Y = H @ W_hq + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


class TextbookGRU:
    """d2l's ``RNNModelScratch`` specialised to the GRU: named parameters plus the functions.

    Call it on integer tokens (B, T) and a state to get logits (T*B, V) and the new state.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int,
        device: str | torch.device = "cpu",
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        gates: str = "zr",
    ) -> None:
        self.vocab_size, self.num_hiddens, self.device = vocab_size, num_hiddens, device
        self.params = get_params(vocab_size, num_hiddens, device, init_std, generator, gates)

    def __call__(self, X: Tensor, state: State) -> tuple[Tensor, State]:
        inputs = F.one_hot(X.T, self.vocab_size).float()  # (T, B, V)
        return gru(inputs, state, self.params)

    def begin_state(self, batch_size: int) -> State:
        return init_gru_state(batch_size, self.num_hiddens, self.device)

    def load_from(self, model: GRUScratch) -> TextbookGRU:
        """Copy ``model``'s current weights (a d2l-variant ``GRUScratch`` with the same gates),
        so both start equal."""
        if not isinstance(model, GRUScratch) or model.variant != "d2l":
            raise TypeError("load_from needs a GRUScratch with gru_variant='d2l'")
        source = dict(model.named_parameters())
        if set(source) != set(self.params):
            raise ValueError(f"{model.model} has other gates than this textbook GRU")
        with torch.no_grad():
            for name, param in self.params.items():
                if source[name].shape != param.shape:
                    raise ValueError(
                        f"{name}: the model's shape {tuple(source[name].shape)} does not match "
                        f"{tuple(param.shape)} (vocab_size {self.vocab_size}, "
                        f"num_hiddens {self.num_hiddens})"
                    )
                param.copy_(source[name])
        return self


def grad_clipping(params: Params, theta: float) -> float:
    """d2l's rule: if the global L2 norm of all gradients exceeds theta, scale every gradient
    by theta / norm. Returns the norm measured before clipping."""
    grads = [p.grad for p in params.values() if p.grad is not None]
    norm = torch.sqrt(sum(torch.sum(g**2) for g in grads))
    if norm > theta:
        for g in grads:
            g[:] *= theta / norm
    return float(norm)


def sgd(params: Params, lr: float, batch_size: int = 1) -> None:
    """Minibatch SGD: ``W <- W - lr * g / batch_size``, then zero the gradients.

    The loss is already a mean over the minibatch, so the training loop passes batch_size=1.
    """
    with torch.no_grad():
        for param in params.values():
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def loss_and_backward(net: TextbookGRU, X: Tensor, Y: Tensor, state: State) -> tuple[Tensor, State]:
    """Forward, mean cross-entropy over the B*T targets, and ``backward`` (gradients land in
    ``net.params[name].grad``). Returns the loss and the new state."""
    y_hat, state = net(X, state)
    y = Y.T.reshape(-1)  # time-major, to line up with the concatenated outputs
    loss = F.cross_entropy(y_hat, y).mean()
    loss.backward()
    return loss, state


def train_step(
    net: TextbookGRU, X: Tensor, Y: Tensor, state: State, lr: float, theta: float
) -> tuple[float, float, State]:
    """One minibatch: loss, backward, clipping, SGD. Returns (loss, grad norm, new state)."""
    loss, state = loss_and_backward(net, X, Y, state)
    grad_norm = grad_clipping(net.params, theta)
    sgd(net.params, lr, batch_size=1)
    return float(loss.detach()), grad_norm, state


class EpochResult(NamedTuple):
    losses: list[float]  # mean cross-entropy of each minibatch, in order
    grad_norms: list[float]  # global gradient norm of each minibatch, before clipping
    num_tokens: int  # target tokens seen in the epoch
    seconds: float  # wall time of the epoch

    @property
    def perplexity(self) -> float:
        """exp of the token-mean loss (all minibatches of an epoch have B*T tokens)."""
        return math.exp(sum(self.losses) / max(len(self.losses), 1))


def train_epoch(
    net: TextbookGRU,
    train_iter: Iterable[tuple[Tensor, Tensor]],
    lr: float,
    theta: float,
    use_random_iter: bool = False,
) -> EpochResult:
    """d2l's ``train_epoch_ch8`` for a scratch model, returning the losses it measured."""
    state: State | None = None
    losses: list[float] = []
    grad_norms: list[float] = []
    num_tokens = 0
    start = time.perf_counter()
    for X, Y in train_iter:
        X, Y = X.to(net.device), Y.to(net.device)
        if state is None or use_random_iter:
            # A fresh state at the first minibatch, or every minibatch with random sampling.
            state = net.begin_state(batch_size=X.shape[0])
        else:
            # Keep the state's values but cut the graph: backprop stops at this minibatch.
            state = tuple(s.detach() for s in state)
        loss, grad_norm, state = train_step(net, X, Y, state, lr, theta)
        losses.append(loss)
        grad_norms.append(grad_norm)
        num_tokens += Y.numel()
    return EpochResult(losses, grad_norms, num_tokens, time.perf_counter() - start)
