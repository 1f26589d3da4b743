r"""One training step for one run or many: a pure device program over K configurations.

``StepCore`` holds K configurations of one shape (same model, variant, hidden size, T and B;
each its own seed, init std, clip threshold theta and learning rate) as parameter tensors
with a leading configuration axis (``W_xz``: (K, V, H), ...). K = 1 is an ordinary run (the
``Trainer``); K > 1 trains many configurations at once on the same minibatches (a sweep).

One step, for every member k at once (``StepCore.step``)::

    L_k, g_k  = loss and gradients (hand-written BPTT, step/bptt.py; autograd for the LSTM)
    n_k       = ||g_k||_2 over all parameters (global norm, accumulated in float64)
    s_k       = theta_k / n_k  if n_k > theta_k  else 1          (theta_k = +inf: clipping off)
    ok_k      = isfinite(L_k) and isfinite(n_k) and alive_k
    W_k      <- W_k - c_k * g_k,   c_k = lr_k * s_k if ok_k else 0    (SGD, guarded)
    alive_k  <- alive_k and isfinite(L_k) and isfinite(n_k)

where ``s_k`` is d2l's ``grad_clipping`` (``g <- g * theta / ||g||``), ``lr`` and ``theta`` are
(K,) device tensors that live knobs overwrite in place, and the guard picks ``c_k`` with
``torch.where`` and replaces non-finite gradient entries by 0 first (0 * NaN = NaN): a member
whose loss or norm is not finite keeps its weights bit for bit from then on (adding a signed
zero changes only a weight of -0.0, which no update makes) and is flagged; the others go on.
The step writes every statistic of the records into ``stats``, one (K, S) buffer
(``step/stats.StatsLayout``).
Inside the step nothing is read back to the host (no item, tolist or Python number from a
tensor) and no Python branch depends on a device value,
so on CUDA the whole step is captured once per shape in a CUDA graph and replayed (``run``).

API (for a run, a sweep or a test)::

    core = StepCore(configs, vocab_size, device)      # K = len(configs), one shape
    core.reset_state()                                # zero H (and C) for every member
    core.load_batch(X, Y)                             # (B, T) int64, the same for all members
    slot = core.run(want_flow)                        # one step; stats copied to host, async
    rows = core.read(slot)                            # (K, S) float64 numpy, waits for the copy
    rows[k, core.layout.index["loss"]]                # a member's statistic by column name
    core.set_config(k, config.replace(lr=0.5))        # a live knob: no re-capture
    core.validation_loss(k, val_tokens)               # one member's held-out loss (device)
    core.member_model(k)                              # a RecurrentLM viewing member k's weights

Randomness: each member draws its initial weights by the one rule of ``model/init.py``
(``W ~ N(0, init_std^2)`` in parameter order, biases 0) from its own ``torch.Generator``
seeded with its config's seed, never from the process-wide generator: two sessions starting
at once get what each would get alone, and member k starts where ``build_model(configs[k])``
does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from gru_core.config import TrainConfig, device_clip
from gru_core.model.cells import RecurrentLM, build_model
from gru_core.model.init import initial_parameters, run_generator
from gru_core.step.bptt import loss_and_grads, model_kind
from gru_core.step.forward import Workspace
from gru_core.step.fused import validation_loss
from gru_core.step.lstm import lstm_loss_and_grads
from gru_core.step.stats import GATE_SUFFIXES, HEAD, GateTable, StatsLayout

SHAPE_FIELDS = ("model", "gru_variant", "hidden_size", "num_steps", "batch_size")
WARMUP_STEPS = 3  # eager steps of each program before it is captured in a CUDA graph
HOST_SLOTS = 3  # host copies of the stats buffer in flight (a step and the one after it)


def _theta(config: TrainConfig) -> float:
    return device_clip(config.clip_threshold)


class StepCore:
    """K configurations of one shape, their parameters, knobs, state and stats buffer."""

    def __init__(
        self,
        configs: Sequence[TrainConfig],
        vocab_size: int,
        device: str,
        dtype: torch.dtype = torch.float32,
        graphs: bool | None = None,
        gate_stats: bool = True,
        probes: bool = True,
    ) -> None:
        """``graphs``: capture the step in CUDA graphs (default: on CUDA only).
        ``gate_stats``: compute the gates' statistics (else their columns hold NaN: a sweep
        shows none and saves about a tenth of a small step). ``probes``: on flow steps, also
        the one-position flows ``||d l_T/dH_t||`` and ``||d l_late/dH_t||`` (step/backward.py;
        else NaN): two more row blocks in the backward, about 35% of a flow step at d2l's
        size, which only the dashboard's Through time view shows."""
        if not configs:
            raise ValueError("StepCore needs at least one configuration")
        first = configs[0]
        for c in configs[1:]:
            for name in SHAPE_FIELDS:
                if getattr(c, name) != getattr(first, name):
                    raise ValueError(
                        f"configurations stepped together must share {name}: "
                        f"{getattr(first, name)!r} != {getattr(c, name)!r}"
                    )
        self.configs = list(configs)
        self.K = K = len(configs)
        self.kind = model_kind(first.model, first.gru_variant)
        self.vocab_size, self.device, self.dtype = vocab_size, device, dtype
        # Norms accumulate in float64 (MPS has none): finite float32 gradients can't overflow.
        self.acc = acc = torch.float32 if device == "mps" else torch.float64
        with torch.device("meta"):  # names, shapes and order only: no values, no RNG
            skeleton = build_model(first, vocab_size)
        self.names = tuple(n for n, _ in skeleton.named_parameters())
        self.generators = [run_generator(c.seed) for c in configs]
        self.params = self._init_params(skeleton)
        self.lr = torch.tensor([c.lr for c in configs], dtype=acc, device=device)
        self.theta = torch.tensor([_theta(c) for c in configs], dtype=acc, device=device)
        self.alive = torch.ones(K, dtype=torch.bool, device=device)
        B, T, Hn = first.batch_size, first.num_steps, first.hidden_size
        self.X = torch.zeros(B, T, dtype=torch.int64, device=device)
        self.Y = torch.zeros(B, T, dtype=torch.int64, device=device)
        self.state = tuple(
            torch.zeros(K, B, Hn, dtype=dtype, device=device) for _ in range(skeleton.state_size)
        )
        self.layout = StatsLayout(self.names, skeleton.gate_names, T)
        self.gate_table = GateTable(skeleton.gate_names, device, acc) if gate_stats else None
        self.probes = probes
        width = len(skeleton.gate_names) * len(GATE_SUFFIXES)
        self._no_gates = torch.full((K, width), math.nan, dtype=acc, device=device)
        self.stats = torch.zeros(K, self.layout.width, dtype=acc, device=device)
        self._no_flow = torch.full((K, T), math.nan, dtype=acc, device=device)
        self.workspace = Workspace()  # the step's buffers (fixed addresses for the graphs)
        self._val_workspace = Workspace()
        self._members: dict[int, RecurrentLM] = {}
        cuda = device.startswith("cuda")
        self._host = [
            torch.zeros(K, self.layout.width, dtype=acc, pin_memory=cuda) for _ in range(HOST_SLOTS)
        ]
        self._events = [torch.cuda.Event() for _ in range(HOST_SLOTS)] if cuda else None
        self._slot = 0
        self.use_graphs = cuda if graphs is None else graphs
        self._graphs: dict[bool, torch.cuda.CUDAGraph] = {}
        self._eager_runs = {False: 0, True: 0}
        self.note: str | None = None  # why the step runs eagerly on CUDA, if it does

    def _init_params(self, skeleton: RecurrentLM) -> dict[str, Tensor]:
        """Each member's initial values by ``init.initial_parameters`` from its generator."""
        shapes = [(n, p.shape) for n, p in skeleton.named_parameters()]
        members = [
            initial_parameters(shapes, config.init_std, gen)
            for config, gen in zip(self.configs, self.generators, strict=True)
        ]
        # One flat (K, P_total) tensor holds every parameter; the named tensors are views of
        # it, so the guarded update and the weight norm are a few ops over all parameters.
        flat = torch.cat(
            [torch.stack([m[n].reshape(-1) for m in members]) for n in self.names], dim=1
        )
        self.flat = flat.to(self.device, self.dtype)
        sizes = [members[0][n].numel() for n in self.names]
        params, start, self._parts = {}, 0, []
        for n, size in zip(self.names, sizes, strict=True):
            shape = members[0][n].shape
            params[n] = self.flat[:, start : start + size].view(self.K, *shape)
            self._parts.append(slice(start, start + size))  # parameter n's columns
            start += size
        return params

    # -- knobs, state, data ------------------------------------------------------------------
    def set_config(self, k: int, config: TrainConfig) -> None:
        """Make ``config`` member k's config in force; its lr and theta reach the next step
        (written in place into the device tensors the step, or its graph, reads)."""
        for name in SHAPE_FIELDS:
            if getattr(config, name) != getattr(self.configs[k], name):
                raise ValueError(f"{name} cannot change during a run")
        self.lr[k] = config.lr
        self.theta[k] = _theta(config)
        self.configs[k] = config

    def reset_state(self) -> None:
        for s in self.state:
            s.zero_()

    def load_batch(self, X: Tensor, Y: Tensor) -> None:
        self.X.copy_(X, non_blocking=True)
        self.Y.copy_(Y, non_blocking=True)

    # -- the step ----------------------------------------------------------------------------
    def step(self, want_flow: bool) -> None:
        """One guarded SGD step of every member on (X, Y) from ``state`` (module docstring).
        Writes params, state, ``alive`` and ``stats`` in place. Device work only."""
        P, acc = self.params, self.acc
        if self.kind == "lstm":
            H, C = self.state
            g, C_T = lstm_loss_and_grads(P, self.X, self.Y, (H, C), want_flow, self.probes)
            C.copy_(C_T)
        else:
            X, Y, H0, ws = self.X, self.Y, self.state[0], self.workspace
            g = loss_and_grads(self.kind, P, X, Y, H0, ws, want_flow, self.probes)
        ws, flat = self.workspace, self.flat
        G = ws.get("G", tuple(flat.shape), flat)  # the gradients, laid out like flat
        for n, part in zip(self.names, self._parts, strict=True):
            G[:, part].view(g.grads[n].shape).copy_(g.grads[n])
        # Norms in float64 from one converted copy (converting inside each norm maps memory)
        wide = ws.get("G_acc", tuple(flat.shape), self.lr).copy_(G)
        norms = torch.stack(
            [torch.linalg.vector_norm(wide[:, part], dim=1) for part in self._parts], dim=1
        )  # (K, P): float64, so a huge but finite float32 gradient cannot overflow here
        grad_norm = norms.square().sum(dim=1).sqrt()
        loss = g.loss.to(acc)
        finite = torch.isfinite(loss) & torch.isfinite(grad_norm)
        ok = finite & self.alive
        clipped = grad_norm > self.theta
        # d2l's clipping: g <- g * theta / ||g|| when ||g|| > theta
        scale = torch.where(clipped, self.theta / grad_norm, torch.ones_like(grad_norm))
        # W <- W - lr * s * g where ok; elsewhere coefficient 0 and the gradient made finite,
        # so W gains a signed zero: unchanged bit for bit (but for a weight of -0.0, which no
        # step makes from other values). An elementwise select over W costs 4x as much.
        coef = torch.where(ok, self.lr * scale, 0.0).to(self.dtype)[:, None]
        flat.addcmul_(G.nan_to_num_(0.0, 0.0, 0.0), coef, value=-1)
        weight_norm = torch.linalg.vector_norm(wide.copy_(flat), dim=1)
        self.alive.logical_and_(finite)
        self.state[0].copy_(g.state)
        head = [loss, grad_norm, grad_norm * scale, clipped, self.theta, self.lr, weight_norm]
        head.append(~self.alive)
        assert len(head) == len(HEAD)
        parts = [torch.stack([h.to(acc) for h in head], dim=1), norms]
        if g.gates:
            table = self.gate_table
            parts.append(table.stats(g.gates, acc) if table is not None else self._no_gates)
        for flow in (g.flow, g.flow_last, g.flow_late):
            parts.append(flow.T.to(acc) if flow is not None else self._no_flow)
        torch.cat(parts, dim=1, out=self.stats)

    def run(self, want_flow: bool) -> int:
        """Run one step (graphed on CUDA after a warm-up) and start copying its stats to
        host memory without waiting. Returns the slot to ``read``."""
        if self.use_graphs:
            self._run_graphed(want_flow)
        else:
            self.step(want_flow)
        slot, self._slot = self._slot, (self._slot + 1) % HOST_SLOTS
        if self._events is not None:
            self._host[slot].copy_(self.stats, non_blocking=True)
            self._events[slot].record()
        else:
            self._host[slot].copy_(self.stats)
        return slot

    def read(self, slot: int) -> np.ndarray:
        """The (K, S) stats of the step that filled ``slot`` (waits for that copy only)."""
        if self._events is not None:
            self._events[slot].synchronize()
        return self._host[slot].numpy().copy()

    def _run_graphed(self, want_flow: bool) -> None:
        """Replay this program's graph; capture it after WARMUP_STEPS eager steps (run on a
        side stream, as PyTorch's recipe asks). A failed capture falls back to eager for good
        and says why in ``note``."""
        graph = self._graphs.get(want_flow)
        if graph is not None:
            graph.replay()
            return
        main = torch.cuda.current_stream(self.device)
        if self._eager_runs[want_flow] < WARMUP_STEPS:
            self._eager_runs[want_flow] += 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(main)
            with torch.cuda.stream(side):
                self.step(want_flow)
            main.wait_stream(side)
            return
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.step(want_flow)  # recorded, not run
        except Exception as exc:  # any capture problem: train on, eagerly
            first = str(exc).splitlines()[0] if str(exc) else ""
            self.note = f"CUDA graph capture failed, training eagerly ({type(exc).__name__}: "
            self.note += f"{first})"
            self.use_graphs = False
            self._graphs.clear()
            torch.cuda.synchronize(self.device)
            self.step(want_flow)
            return
        self._graphs[want_flow] = graph
        graph.replay()

    @property
    def graphed(self) -> bool:
        """Whether at least one program is replayed from a CUDA graph."""
        return bool(self._graphs)

    # -- members -----------------------------------------------------------------------------
    def member_model(self, k: int) -> RecurrentLM:
        """A model whose parameters are views of member k's weights (updates show through):
        for prediction, the gate probe and validation, which stay eager."""
        model = self._members.get(k)
        if model is None:
            with torch.device("meta"):
                model = build_model(self.configs[k], self.vocab_size)
            model = model.to_empty(device=self.device).to(self.dtype)
            for name, p in model.named_parameters():
                p.data = self.params[name][k]
            self._members[k] = model
        return model

    def weights(self, k: int) -> dict[str, Tensor]:
        """A CPU float32 copy of member k's parameters, shapes as in model/cells.py."""
        return {n: W[k].to("cpu", torch.float32, copy=True) for n, W in self.params.items()}

    def validation_loss(self, k: int, tokens: Tensor) -> Tensor | None:
        """Member k's token-mean cross-entropy on held-out ``tokens``, a 0-d device tensor
        (``fused.validation_loss``; eager, on its own workspace); None without any."""
        model = self.member_model(k)
        T = self.configs[k].num_steps
        return validation_loss(model, tokens, T, self._val_workspace, self.acc)
