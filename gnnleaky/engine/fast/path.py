"""The fast path's forward and backward: one autograd node for a whole stack.

Per layer and model, forward: ``P = H W`` (torch), then one fused kernel for
``Z = A P + b`` and ``H' = phi(Z) * mask * scale``
(:func:`~gnnleaky.engine.fast.kernels.propagate`); backward: one fused activation-gradient
pass, one sparse product ``A^T G_Z`` and two dense products. A training step records one
autograd node instead of about ten per layer, and the tensors the backward needs live in
the stack's :class:`~gnnleaky.engine.fast.plan.Workspace`. Model ``k``'s numbers depend on
model ``k`` alone: its dropout masks come from its own generator in layer order, exactly
as in the autograd path.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnnleaky.engine.dropout import KernelMask, model_layer_masks, shared_layer_masks
from gnnleaky.engine.fast import kernels
from gnnleaky.engine.fast.plan import FastGraph, Layout, Plan, Workspace, build_plan
from gnnleaky.engine.fast.threads import (
    each_model,
    flush_denormals,
    single_threaded,
    threads,
)

__all__ = ["available", "fast_forward", "onednn_linear"]

_NO_SLOPE_GRAD = np.zeros(0, dtype=np.float32)  # g_slope when slopes need no gradient


def available() -> bool:
    """Whether the fast path may be used (``GNNLEAKY_FAST=0`` turns it off)."""
    return os.environ.get("GNNLEAKY_FAST", "1") != "0"


@functools.lru_cache(maxsize=1)
def onednn_linear() -> Any:
    """``h @ weight.T`` by oneDNN's fp32 GEMM if this torch build has it, else ``None``."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        op = torch.ops.mkldnn._linear_pointwise
        x = torch.ones(3, 2)
        if not torch.equal(op(x, torch.ones(4, 2), None, "none", [], ""), torch.full((3, 4), 2.0)):
            return None
    except (AttributeError, RuntimeError):
        return None
    return lambda h, weight: op(h, weight, None, "none", [], "")


def _masks(plan: Plan, k: int) -> list[KernelMask]:
    """Model ``k``'s dropout masks of every activated layer (``[]`` without dropout)."""
    if plan.p == 0.0:
        return [kernels.NO_MASK] * plan.layout.num_acts
    widths = plan.layout.widths[1 : plan.layout.num_acts + 1]
    return model_layer_masks(plan.graph.num_nodes, widths, plan.p, plan.generators[k])


def _forward_model(
    plan: Plan, k: int, masks: Sequence[KernelMask], out: Tensor, ws: Workspace
) -> list[tuple[Tensor, np.ndarray | None, KernelMask]]:
    """Model ``k`` forward into ``out[k]``; returns what its backward needs, per layer:
    (layer input, pre-activation or output as a numpy view, dropout mask)."""
    g, layout = plan.graph, plan.layout
    saved = []
    h = g.x
    p_flat = ws.p[k]
    for layer in range(layout.num_layers):
        c_in, c_out = layout.widths[layer], layout.widths[layer + 1]
        p, p_np = ws.view(p_flat, c_out)
        if layer == 0 and g.feats is not None:
            kernels.spmm(g.feats, plan.weights_np[0][k], p_np)
        else:
            torch.mm(h, plan.weights[layer][k], out=p)
        bias = plan.biases_np[layer][k]
        last = layer == layout.num_layers - 1
        if last:  # no activation: z is the output
            h_next = out[k]
            z_np = h_np = h_next.numpy()
            kernels.propagate(g.a, p_np, bias, bias, kernels.NO_MASK, False, True, z_np, h_np)
        else:
            if plan.need_grad:
                h_next = ws.h[layer][k]
                h_np = h_next.numpy()
                keep = plan.keep_z[layer][k]
                z_np = ws.z[layer][k].numpy() if keep else h_np
            else:
                h_next, h_np = ws.view(ws.eval[k, layer % 2], c_out)
                keep, z_np = False, h_np
            slope = plan.slopes_np[layer, k]
            kernels.propagate(g.a, p_np, bias, slope, masks[layer], True, keep, z_np, h_np)
        if layout.residual and c_in == c_out:
            h_next.add_(h)
        if plan.need_grad:
            # z_np is h_np where phi' is read off the output; None: no activation
            saved.append((h, None if last else z_np, kernels.NO_MASK if last else masks[layer]))
        h = h_next
    return saved


class _Grads:
    """Weight, bias and slope gradients of all models: one ``[K, ...]`` tensor per layer
    (``s``: ``[A, K, C]`` or ``None`` when the slopes need none)."""

    def __init__(self, plan: Plan, want_slopes: bool) -> None:
        self.w = [torch.empty_like(w) for w in plan.weights]
        self.b = [torch.zeros(b.shape) for b in plan.biases_np]
        self.s = torch.zeros(plan.slopes_np.shape) if want_slopes else None


def _backward_model(
    plan: Plan, ws: Workspace, k: int, grad_out: Tensor, saved: list, grads: _Grads
) -> None:
    """Model ``k``'s backward. Per layer: ``G_P = A^T G_Z``, ``G_H = G_P W^T``, the
    layer below's ``G_Z`` from ``G_H``, then ``grad W = H^T G_P``: taking the layer
    below's activation pass before ``grad W`` lets that streaming pass (and not the GEMM)
    bring ``H`` from memory."""
    g, layout = plan.graph, plan.layout
    scratch = ws.scratch[k]
    want = grads.s is not None

    def slot(i: int, c: int) -> tuple[Tensor, np.ndarray]:
        return ws.view(scratch[i], c)

    def grad_z(layer: int, grad: Tensor) -> np.ndarray:
        """``G_Z`` of ``layer`` from its output gradient (bias and slope gradients too)."""
        z, mask = saved[layer][1:]
        if z is None:  # the last layer: no activation
            torch.sum(grad, 0, out=grads.b[layer][k])
            return grad.numpy()
        g_z_np = slot(layer % 2, layout.widths[layer + 1])[1]
        kernels.activation_backward(
            grad.numpy(), z, plan.slopes_np[layer, k], mask, g_z_np,
            grads.b[layer][k].numpy(),
            grads.s[layer, k].numpy() if want else _NO_SLOPE_GRAD, want,
        )  # fmt: skip
        return g_z_np

    grad = grad_out[k]  # (grad_out is contiguous)
    g_z_np = grad_z(layout.num_layers - 1, grad)
    for layer in range(layout.num_layers - 1, -1, -1):
        h_in = saved[layer][0]
        c_in, c_out = layout.widths[layer], layout.widths[layer + 1]
        g_p, g_p_np = slot(2, c_out)
        kernels.spmm(g.a_t, g_z_np, g_p_np)
        if layer > 0:
            g_h, _ = slot(3 + layer % 2, c_in)
            torch.mm(g_p, plan.weights[layer][k].t(), out=g_h)
            if layout.residual and c_in == c_out:
                g_h.add_(grad)
            grad = g_h
            g_z_np = grad_z(layer - 1, grad)  # (into a G_Z row: g_p is not touched)
            torch.mm(h_in.t(), g_p, out=grads.w[layer][k])
        elif g.feats is not None:
            kernels.spmm(g.feats_t, g_p_np, grads.w[0][k].numpy())
        else:
            torch.mm(g.x.t(), g_p, out=grads.w[0][k])


class _FastStack(torch.autograd.Function):
    """The K models' forward and backward (torch on one intra-op thread inside, and
    denormals flushed to zero)."""

    @staticmethod
    def forward(ctx: Any, plan: Plan, slopes: Tensor, *params: Tensor) -> Tensor:
        with single_threaded(), flush_denormals():
            layout, n = plan.layout, plan.graph.num_nodes
            out = torch.empty(layout.num_models, n, layout.widths[-1])
            if plan.p and plan.generators is None:
                # masks from torch's default generator, drawn here in the autograd
                # path's order (one [N, K C] draw per layer)
                widths = layout.widths[1 : layout.num_acts + 1]
                drawn = shared_layer_masks(n, widths, plan.p, layout.num_models)
            else:
                drawn = None
            token = None
            ws = plan.workspace
            if plan.need_grad:
                token = ws.claim()
                if token is None:  # a live graph still holds the workspace: fresh buffers
                    ws = Workspace(layout, n)
                ws.need_z([i for i, keep in enumerate(plan.keep_z) if any(keep)])

            def model(k: int) -> Any:
                masks = drawn[k] if drawn is not None else _masks(plan, k)
                return _forward_model(plan, k, masks, out, ws)

            saved = each_model(layout.num_models, model, plan.threads)
            if plan.need_grad:
                ctx.plan, ctx.ws, ctx.saved, ctx.token = plan, ws, saved, token
                ctx.want_slopes = slopes.requires_grad and slopes.numel() > 0
            return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        with single_threaded(), flush_denormals():
            plan, ws, saved = ctx.plan, ctx.ws, ctx.saved
            need = ctx.needs_input_grad
            grads = _Grads(plan, ctx.want_slopes and need[1])
            grad_out = grad_out.contiguous()

            def model(k: int) -> None:
                _backward_model(plan, ws, k, grad_out, saved[k], grads)

            each_model(plan.layout.num_models, model, plan.threads)
            ctx.saved = ctx.token = ctx.ws = None
            layers = plan.layout.num_layers
            w_out = [gw if need[2 + i] else None for i, gw in enumerate(grads.w)]
            b_out = [gb if need[2 + layers + i] else None for i, gb in enumerate(grads.b)]
            return (None, grads.s, *w_out, *b_out)


def fast_forward(
    layout: Layout,
    graph: FastGraph,
    workspace: Workspace,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    slopes: Tensor | None,
    dropout: Any,
) -> Tensor:
    """All K models on ``graph``: ``[K, N, out]``. ``weights[l]`` is ``[K, in, out]``,
    ``biases[l]`` ``[K, out]``, ``slopes`` ``[A, K, C]`` (``None`` without activated
    layers), ``dropout`` the stack's :class:`~gnnleaky.engine.SeededDropout`; gradients
    flow to all of them."""
    params = [*weights, *biases]
    if slopes is None:
        slopes = torch.empty(0)
    need_grad = torch.is_grad_enabled() and (
        slopes.requires_grad or any(p.requires_grad for p in params)
    )
    plan = build_plan(
        layout,
        graph,
        workspace,
        weights,
        biases,
        slopes if slopes.numel() else None,
        dropout,
        need_grad=need_grad,
        slopes_grad=slopes.requires_grad,
        threads=threads(),
    )
    return _FastStack.apply(plan, slopes, *params)
