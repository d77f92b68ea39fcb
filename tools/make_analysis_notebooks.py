"""Write notebooks 01, 03, 04 (outputs stripped). Run from the repo root."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

LOAD = """from gnnleaky.datasets import load

try:
    data = load('cora')
except FileNotFoundError:  # no Cora under GNNLEAKY_DATA: a synthetic graph instead
    data = load('csbm', num_nodes=1000, num_classes=3, num_features=32, avg_degree=8,
                homophily=0.8, snr=1.5, num_splits=1, seed=0)
data"""


def write(path, cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    stem = path.split("/")[-1][:2]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"nb{stem}-{i:02d}"  # stable ids: regenerating gives no diff
    nbformat.validate(nb)
    nbformat.write(nb, path)


def md(text):
    return new_markdown_cell(text.strip("\n"))


def code(text):
    return new_code_cell(text.strip("\n"))


# ----------------------------------------------------------------------------------------
write(
    "notebooks/01_quickstart.ipynb",
    [
        md("""
# Quickstart: per-layer activations and a spectral probe

`gnnleaky.nn.LeakyGNN` has the signature of PyG's `GCN` and gives **every layer its own
activation**: ReLU, a Leaky ReLU with a fixed slope, or a PReLU with a learned slope per
layer or per channel. `gnnleaky.spectral.LayerProbe` records how much high-frequency signal
each layer keeps. This notebook trains three small models on Cora (or on a synthetic cSBM
graph when Cora is not under `GNNLEAKY_DATA`) and probes deeper ones.

Set `GNNLEAKY_NOTEBOOK_SMALL=1` for a fast run (fewer epochs, shallower models).
"""),
        code("""
import os

import matplotlib.pyplot as plt
import pandas as pd
import torch

from gnnleaky.analysis import fit_node_classifier, slope_table
from gnnleaky.nn import LeakyGNN, slopes
from gnnleaky.spectral import LayerProbe

SMALL = os.environ.get('GNNLEAKY_NOTEBOOK_SMALL') == '1'
EPOCHS = 20 if SMALL else 200
DEPTH = 4 if SMALL else 16
"""),
        code(LOAD),
        md("""
## Layers: one activation instance per layer

`act_kwargs` configures the activation of every layer; a PReLU gets its own slope in each
layer (`mode="layer"`) or in each channel (`mode="channel"`).
"""),
        code("""
settings = {
    'relu': dict(act='relu'),
    'leaky 0.2': dict(act='leaky_relu', act_kwargs={'negative_slope': 0.2}),
    'prelu (channel)': dict(act='prelu', act_kwargs={'mode': 'channel', 'init': 0.25}),
}
torch.manual_seed(0)
models = {name: LeakyGNN(data.num_features, 64, 2, data.num_classes, dropout=0.5, **kw)
          for name, kw in settings.items()}
print(models['prelu (channel)'])
{name: [tuple(s.shape) for s in slopes(m).values()] for name, m in models.items()}
"""),
        code("""
rows = []
for name, model in models.items():
    hist = fit_node_classifier(model, data, epochs=EPOCHS, lr=0.01, weight_decay=5e-4, seed=0)
    best = hist.loc[hist.val_acc.idxmax()]
    rows.append({'model': name, 'best_epoch': int(best.epoch), 'val_acc': best.val_acc,
                 'test_acc': best.test_acc})
pd.DataFrame(rows).round(3)
"""),
        md("""
The learned channel-wise slopes of the PReLU model (restored at its best validation epoch):
"""),
        code("""
table = slope_table(models['prelu (channel)'])
table.groupby('act').slope.describe().round(3)
"""),
        md("""
## Probe: energy per layer

`LayerProbe` hooks every layer and records metrics before (`pre`) and after (`post`) the
activation: here the unnormalized Dirichlet energy
$E(X) = \\frac1N\\sum_i\\sum_{j \\in N(i)} \\|x_i - x_j\\|^2$ and the Rayleigh quotient on the
symmetric-normalized Laplacian without self-loops (in $[0, 2]$). Deep untrained GCNs with
the same weights show how each activation passes the high-frequency part on.
"""),
        code("""
torch.manual_seed(1)
deep = LeakyGNN(data.num_features, 64, DEPTH, act='relu')
frames = []
for name, kw in [('relu', dict(act='relu')),
                 ('leaky 0.2', dict(act='leaky_relu', act_kwargs={'negative_slope': 0.2})),
                 ('leaky 0.8', dict(act='leaky_relu', act_kwargs={'negative_slope': 0.8}))]:
    model = LeakyGNN(data.num_features, 64, DEPTH, **kw)
    model.load_state_dict(deep.state_dict())  # same weights, different activation
    model.eval()
    with LayerProbe(model, metrics=['dirichlet', 'rayleigh'], stage='post') as probe:
        with torch.no_grad():
            model(data.x, data.edge_index)
    frame = probe.to_frame()
    frame['model'] = name
    frames.append(frame)
probes = pd.concat(frames, ignore_index=True)
probes.pivot_table(index='layer', columns=['metric', 'model'], values='value').round(4)
"""),
        code("""
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, metric in zip(axes, ['dirichlet', 'rayleigh']):
    for name, line in probes[probes.metric == metric].groupby('model'):
        ax.plot(line.layer + 1, line.value, marker='.', label=name)
    ax.set_xlabel('layer')
    ax.set_ylabel(metric)
    ax.set_yscale('log')
axes[0].legend()
fig.tight_layout()
"""),
    ],
)

# ----------------------------------------------------------------------------------------
write(
    "notebooks/03_spectral_energy.ipynb",
    [
        md("""
# Spectral energy per layer: ReLU against Leaky ReLU

For each layer's output $X^{(\\ell)}$ we measure how its energy
$\\|X^{(\\ell)}\\|_F^2$ is spread over the frequencies of the symmetric-normalized Laplacian
$L = I - D^{-1/2} A D^{-1/2}$ (no self-loops; spectrum in $[0, 2]$): band energies and
the full spectral density, estimated by the kernel polynomial method (KPM: Chebyshev
moments with Jackson damping, no eigendecomposition), so it scales to large graphs.
The same random weights are run with different activations, then models trained with each.

Set `GNNLEAKY_NOTEBOOK_SMALL=1` for a fast run.
"""),
        code("""
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from gnnleaky.analysis import fit_node_classifier, with_activation
from gnnleaky.nn import LeakyGNN
from gnnleaky.spectral import LayerProbe, band_energy, spectral_density

SMALL = os.environ.get('GNNLEAKY_NOTEBOOK_SMALL') == '1'
DEPTH = 4 if SMALL else 8
MOMENTS = 32 if SMALL else 128
EPOCHS = 20 if SMALL else 200
BANDS = [0.0, 0.5, 1.0, 1.5, 2.0]
ACTS = {'relu': ('relu', {}), 'leaky 0.2': ('leaky_relu', {'negative_slope': 0.2}),
        'leaky 0.6': ('leaky_relu', {'negative_slope': 0.6})}
"""),
        code(LOAD),
        md("""
## Check: KPM against the exact eigenbasis

On the raw features, the KPM band energies are compared with an exact eigendecomposition
(on a 300-node subgraph, where it is cheap). Eigenvalues that fall on a band edge are
counted half on each side by both.
"""),
        code("""
from torch_geometric.utils import subgraph

nodes = torch.arange(300)
sub_ei, _ = subgraph(nodes, data.edge_index, relabel_nodes=True, num_nodes=data.num_nodes)
x_sub = data.x[nodes]
exact = band_energy(x_sub, sub_ei, bands=BANDS, method='exact')
kpm = spectral_density(x_sub, sub_ei, num_moments=256).band_energy(BANDS)
pd.DataFrame({'band': [f'[{a}, {b})' for a, b in zip(BANDS, BANDS[1:])],
              'exact share': (exact / exact.sum()).numpy(),
              'kpm share': (kpm / kpm.sum()).numpy()}).round(4)
"""),
        md("""
## Same weights, different activation

One random `LeakyGNN` (GCN layers, width 64); its weights are copied into models that
differ only in the activation (`with_activation`). For every layer's post-activation
features: the share of energy in each band and the high-frequency share (frequency
$\\ge 1$, where one propagation step no longer preserves a component's sign).
"""),
        code("""
torch.manual_seed(0)
base = LeakyGNN(data.num_features, 64, DEPTH, act='relu').eval()


def spectra(model, x, edge_index):
    with torch.no_grad():
        _, hidden = model.forward_hidden(x, edge_index)
    out = []
    for layer, h in enumerate(hidden.post):
        sd = spectral_density(h, edge_index, num_moments=MOMENTS)
        out.append((layer, sd))
    return out


rows, densities = [], {}
for name, (act, kw) in ACTS.items():
    model = with_activation(base, act, **kw).eval()
    for layer, sd in spectra(model, data.x, data.edge_index):
        shares = (sd.band_energy(BANDS) / sd.total).tolist()
        for (lo, hi), share in zip(zip(BANDS, BANDS[1:]), shares):
            rows.append({'act': name, 'layer': layer, 'band': f'[{lo}, {hi})',
                         'share': share})
        rows.append({'act': name, 'layer': layer, 'band': 'hf (>= 1)',
                     'share': float(sd.high_frequency_ratio(1.0))})
        densities[name, layer] = sd
bands = pd.DataFrame(rows)
bands.pivot_table(index=['band', 'layer'], columns='act', values='share').round(4)
"""),
        code("""
fig, axes = plt.subplots(1, len(ACTS), figsize=(4 * len(ACTS), 3.5), sharey=True)
freqs = torch.linspace(0.01, 1.99, 400, dtype=torch.float64)
for ax, name in zip(axes, ACTS):
    for layer in range(DEPTH):
        sd = densities[name, layer]
        rho = (sd.density(freqs) / sd.total).numpy()
        ax.plot(freqs.numpy(), rho, color=plt.cm.viridis(layer / max(DEPTH - 1, 1)),
                label=f'layer {layer + 1}')
    ax.set_title(name)
    ax.set_xlabel('frequency $\\\\lambda$')
    ax.set_yscale('log')
    ax.set_ylim(1e-4, None)
axes[0].set_ylabel('energy density (share per unit $\\\\lambda$)')
axes[-1].legend(fontsize=7)
fig.tight_layout()
"""),
        code("""
hf = bands[bands.band == 'hf (>= 1)'].pivot(index='layer', columns='act', values='share')
ax = hf.plot(marker='o', logy=True, figsize=(5, 3.5))
ax.set_ylabel('high-frequency share')
ax.set_xlabel('layer (0 = first)')
hf.round(4)
"""),
        md("""
## Trained models, and what the activation itself does

Models trained with each activation, probed before (`pre`) and after (`post`) the
activation with the Rayleigh quotient $\\operatorname{tr}(X^\\top L X)/\\|X\\|_F^2$. The
activation is the only nonlinear step; `post - pre` is the change in frequency it makes by
itself (the output layer has no activation and is left out).
"""),
        code("""
frames, accs = [], {}
for name, (act, kw) in ACTS.items():
    torch.manual_seed(0)
    model = LeakyGNN(data.num_features, 64, DEPTH, data.num_classes, dropout=0.5, act=act,
                     act_kwargs=kw)
    hist = fit_node_classifier(model, data, epochs=EPOCHS, seed=0)
    accs[name] = float(hist.loc[hist.val_acc.idxmax()].test_acc)
    with LayerProbe(model, metrics=['rayleigh'], stage='both') as probe:
        with torch.no_grad():
            model(data.x, data.edge_index)
    frame = probe.to_frame()
    frame['act'] = name
    frames.append(frame)
probed = pd.concat(frames)
probed = probed[probed.layer < DEPTH - 1]
rq = probed.pivot_table(index=['act', 'layer'], columns='stage', values='value')
rq['post - pre'] = rq['post'] - rq['pre']
print({k: round(v, 3) for k, v in accs.items()})
rq.round(4)
"""),
    ],
)

# ----------------------------------------------------------------------------------------
write(
    "notebooks/04_slope_theory.ipynb",
    [
        md("""
# The negative slope in theory and in trained models

Each claim of `docs/theory.md`, computed with `gnnleaky.analysis`:

1. **Two-node dynamics**: closed form against simulation; larger slopes keep more
   high-frequency energy without self-loops, and no slope helps once the GCN operator
   with self-loops has removed it.
2. **Stability** of the weight-tied map $h \\mapsto \\phi(\\hat A h W)$:
   $\\rho(W) \\le 1/\\max(1, |\\alpha|)$ and an empirical contraction check, with a
   counterexample just above the bound.
3. **Lipschitz certificate** of trained GCNs against an empirical lower bound.
4. **Saliency** of the same weights under ReLU and Leaky ReLU; dead and silent units.
5. **Diagnostics**: slope trajectories, pre-activation skewness, slope drift under a
   feature shift.
6. **Slope gating** with an L1 penalty.

Set `GNNLEAKY_NOTEBOOK_SMALL=1` for a fast run.
"""),
        code("""
import os

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch_geometric.utils import degree

from gnnleaky.analysis import (
    compare_saliency,
    contraction_check,
    dead_units,
    fit_node_classifier,
    lipschitz_bound,
    lipschitz_lower_bound,
    operator_norm,
    preactivation_skewness,
    recurrent_stability_bound,
    slope_drift,
    slope_gating,
    slope_trajectories,
    two_node_energy_table,
)
from gnnleaky.nn import LeakyGNN

SMALL = os.environ.get('GNNLEAKY_NOTEBOOK_SMALL') == '1'
EPOCHS = 20 if SMALL else 200
"""),
        code(LOAD),
        md("""
## 1. Two-node dynamics

$h_{t+1} = \\phi_\\alpha(P h_t)$ from the alternating start $h_0 = (1, -1)$. Without
self-loops ($P$ the adjacency) the closed form is $E_{HF}(t) = (1 + \\alpha^t)^2 / 2$:
the alternating amplitude drops to $(1+\\alpha)/2$ in the first step and then to $1/2$,
not to 0. With the GCN operator $\\hat P = D^{-1/2}(A+I)D^{-1/2}$ the alternating vector is
in the kernel: $E_{HF} = 0$ after one step for every $\\alpha$. `sim_error` is the largest
difference between closed form and simulation.
"""),
        code("""
alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
two = two_node_energy_table(alphas, depth=16)
print('max |closed form - simulation|:', two.sim_error.max())
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, (op, sub) in zip(axes, two.groupby('operator')):
    for alpha, line in sub.groupby('negative_slope'):
        ax.plot(line.layer, line.hf_energy, marker='.', label=f'alpha = {alpha:g}')
    ax.set_title(op)
    ax.set_xlabel('layer t')
axes[0].set_ylabel('high-frequency energy')
axes[1].legend()
fig.tight_layout()
two[two.layer.isin([1, 2, 16])].pivot_table(index=['operator', 'layer'],
                                            columns='negative_slope', values='hf_energy')
"""),
        md("""
## 2. Stability of the weight-tied recurrence

The map is non-expansive when $\\|W\\|_2 \\le 1/(\\max(1,|\\alpha|)\\,\\|\\hat A\\|_2)$; for a
normal $W$, $\\|W\\|_2 = \\rho(W)$, and $\\|\\hat A\\|_2 = 1$ on an undirected graph (computed
here). Random pairs of states are iterated 32 steps: with $\\rho(W)$ just below the bound
no distance ever grows. Just above it, pairs whose difference lies on the top
eigenvector $\\tilde D^{1/2}\\mathbf 1$ of $\\hat A$, in the orthant where the activation is
linear with slope $\\max(1, |\\alpha|)$, move apart by exactly $\\max(1,|\\alpha|)\\rho(W)$
per step: the bound is tight.
"""),
        code("""
ei, n = data.edge_index, data.num_nodes
print('||A_hat||_2 =', operator_norm(ei, n))
g = torch.Generator().manual_seed(0)
q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))  # orthogonal
top = (degree(ei[1], n, dtype=torch.float64) + 1).sqrt().unsqueeze(1).expand(n, 8)
rows = []
for alpha in [0.2, 1.5]:
    bound = 1 / max(1.0, abs(alpha))
    sign = 1.0 if alpha <= 1 else -1.0
    for rho in [0.98 * bound, 1.02 * bound]:
        res = recurrent_stability_bound(rho * q, alpha)
        rand = contraction_check(rho * q, alpha, ei, n, steps=32, num_pairs=8)
        g0 = sign * torch.ones(n, 8, dtype=torch.float64)
        worst = contraction_check(rho * torch.eye(8, dtype=torch.float64), alpha, ei, n,
                                  steps=8, states=(g0 + sign * top, g0))
        rows.append({'alpha': alpha, 'rho': rho, 'bound': res.bound, 'holds': res.holds,
                     'max ratio (random pairs)': rand.max_ratio,
                     'ratio (top-eigenvector pair)': worst.max_ratio})
pd.DataFrame(rows).round(4)
"""),
        md("""
## 3. Lipschitz certificate against an empirical lower bound

$\\operatorname{Lip}(f) \\le \\prod_\\ell \\|\\hat A\\|_2 \\|W_\\ell\\|_2 \\max(1, |\\alpha_\\ell|)$ for
trained two-layer GCNs with slopes below and above 1; the lower bound maximizes
$\\|f(X + d) - f(X)\\| / \\|d\\|$ by gradient ascent (started from the top singular vector of
the Jacobian).
"""),
        code("""
rows, trained = [], {}
for alpha in ([0.2, 1.5] if SMALL else [0.0, 0.2, 1.0, 1.5]):
    torch.manual_seed(0)
    model = LeakyGNN(data.num_features, 32, 2, data.num_classes, dropout=0.5,
                     act='leaky_relu', act_kwargs={'negative_slope': alpha})
    hist = fit_node_classifier(model, data, epochs=EPOCHS, seed=0)
    trained[alpha] = model
    bound = lipschitz_bound(model, ei, num_nodes=n)
    low = lipschitz_lower_bound(model, data.x, ei, restarts=1 if SMALL else 3,
                                steps=3 if SMALL else 30, power_iters=3 if SMALL else 20)
    rows.append({'negative_slope': alpha, 'test_acc': hist.loc[hist.val_acc.idxmax()].test_acc,
                 'certificate': bound, 'empirical': low, 'gap': bound / low})
pd.DataFrame(rows).round(3)
"""),
        md("""
## 4. Saliency: ReLU against Leaky ReLU on the same weights

The model trained with slope 0.2 is explained twice, once with its activations swapped
for ReLUs: saliency $|\\partial f(X)_{i,t_i} / \\partial X|$ of a sample of test nodes,
compared by cosine similarity and Spearman rank correlation over each node's receptive
field. Silent entries (pre-activation $\\le 0$) are where the two differ: ReLU passes no
gradient there.
"""),
        code("""
model = trained[0.2]
print(dead_units(model, data.x, ei).round(3).to_string(index=False))
test_nodes = data.test_mask.nonzero().flatten()[: 10 if SMALL else 50]
sal = compare_saliency(model, data.x, ei, test_nodes, negative_slope=0.2)
sal[['cosine', 'spearman', 'relu_norm', 'leaky_norm']].describe().round(3)
"""),
        md("""
## 5. Diagnostics of learned slopes

A channel-wise PReLU GCN: slope trajectories during training, the skewness of each layer's
pre-activations next to its learned slopes, and the slope drift when training continues on
shifted features $X + \\delta$ (compared with continuing on $X$).
"""),
        code("""
torch.manual_seed(0)
prelu = LeakyGNN(data.num_features, 32, 3, data.num_classes, dropout=0.5, act='prelu',
                 act_kwargs={'mode': 'channel', 'init': 0.25})
traj = slope_trajectories(prelu, data, epochs=EPOCHS, seed=0)
summary = traj.groupby(['epoch', 'act']).slope.agg(['mean', 'std']).unstack('act')
ax = summary['mean'].plot(figsize=(5, 3.5))
ax.set_ylabel('mean slope over channels')
skew = preactivation_skewness(prelu, data.x, ei, per_channel=True)
print(skew.groupby('layer')[['skewness', 'negative_share', 'slope']].corr().round(3))
drift = slope_drift(prelu, data, 0.5 * data.x.std(0), epochs=5 if SMALL else 50, seed=0)
drift.groupby('act')[['slope_before', 'slope_control', 'slope_shifted', 'drift']].mean().round(4)
"""),
        md("""
## 6. Slope gating

Training with $\\mathrm{CE} + \\lambda \\sum |\\alpha|$ pushes slopes to 0 (units become
ReLUs). Adam with an L1 subgradient leaves them hovering within about the learning rate of
0, so a slope counts as gated when $|\\alpha| \\le 10^{-2}$. Slopes and accuracies are those
of the final model.
"""),
        code("""
lams = [0.0, 1e-3, 1e-2, 1e-1] if not SMALL else [0.0, 1e-1]
gate = slope_gating(data, lams, hidden_channels=32, epochs=EPOCHS, seeds=[0] if SMALL else [0, 1, 2])
gate.groupby('lam')[['gated_share', 'mean_abs_slope', 'test_acc']].agg(['mean', 'std']).round(3)
"""),
    ],
)
