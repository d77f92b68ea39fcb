"""Writes notebooks/02_oversmoothing_sweep.ipynb (outputs stripped)."""

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# Oversmoothing sweep: accuracy and energy versus depth and slope\n\n"
        "This notebook reads a results store written by `gnnleaky sweep` and shows\n"
        "(1) mean test accuracy over depth x activation/slope, (2) per-layer Dirichlet energy\n"
        "and high-frequency share at the best epoch, coloured by the Leaky ReLU slope, and\n"
        "(3) the learned PReLU slopes.\n\n"
        "Set `GNNLEAKY_RESULTS` to a store (e.g. `results/quick.sqlite` after `make demo`).\n"
        "Without it, a small sweep on synthetic cSBM graphs is run here first."
    ),
    nbf.v4.new_code_cell(
        "import os\n"
        "import tempfile\n\n"
        "import matplotlib.pyplot as plt\n\n"
        "from gnnleaky.bench.config import load_config\n"
        "from gnnleaky.bench.report import layer_table, summary_table\n"
        "from gnnleaky.bench.store import load\n"
        "from gnnleaky.bench.sweep import run_sweep\n\n"
        "SMALL = os.environ.get('GNNLEAKY_NOTEBOOK_SMALL') == '1'\n"
        "path = os.environ.get('GNNLEAKY_RESULTS')\n"
        "if not path:\n"
        "    cfg = load_config('quick')\n"
        "    if SMALL:\n"
        "        cfg = cfg.replace(depths=[2, 8], alphas=[0.05, 0.5], seeds=[0], epochs=20,\n"
        "                          activations=['relu', 'leaky_relu', 'prelu_channel'])\n"
        "    path = os.path.join(tempfile.mkdtemp(), 'sweep.sqlite')\n"
        "    print(run_sweep(cfg, path))\n"
        "results = load(path)\n"
        "results.runs[['dataset_label', 'num_layers', 'activation', 'negative_slope', 'seed',\n"
        "              'status', 'best_epoch', 'test_score']].head()"
    ),
    nbf.v4.new_markdown_cell("## Mean test score (± std over seeds) by depth and activation"),
    nbf.v4.new_code_cell(
        "table = summary_table(results.runs)\n"
        "pivot = table.pivot_table(index=['dataset_label', 'num_layers'], columns='setting',\n"
        "                          values='mean')\n"
        "(100 * pivot).round(1)"
    ),
    nbf.v4.new_code_cell(
        "labels = sorted(table.dataset_label.unique())\n"
        "fig, axes = plt.subplots(1, len(labels), figsize=(6 * len(labels), 4), squeeze=False)\n"
        "for ax, label in zip(axes[0], labels):\n"
        "    sub = table[table.dataset_label == label]\n"
        "    for setting, line in sub.groupby('setting'):\n"
        "        ax.errorbar(line.num_layers, 100 * line['mean'], yerr=100 * line['std'].fillna(0),\n"
        "                    marker='o', capsize=3, label=setting)\n"
        "    ax.set_xscale('log', base=2)\n"
        "    ax.set_xlabel('depth (layers)')\n"
        "    ax.set_ylabel('test accuracy (%)')\n"
        "    ax.set_title(label)\n"
        "axes[0][0].legend(fontsize=7)\n"
        "fig.tight_layout()"
    ),
    nbf.v4.new_markdown_cell(
        "## Energy versus depth by slope\n\n"
        "Unnormalized Dirichlet energy $E(X) = \\frac{1}{N}\\sum_i\\sum_{j\\in N(i)}"
        "\\|x_i - x_j\\|^2$ after each layer's activation, at the best epoch of the deepest "
        "models (log scale), and the share of $\\|X\\|^2$ at symmetric-normalized Laplacian "
        "frequencies $\\lambda \\ge 1$."
    ),
    nbf.v4.new_code_cell(
        "fig, axes = plt.subplots(2, len(labels), figsize=(6 * len(labels), 7), squeeze=False)\n"
        "for row, (metric, log_y) in enumerate([('dirichlet', True), ('hf_ratio', False)]):\n"
        "    tab = layer_table(results, metric=metric)\n"
        "    for ax, label in zip(axes[row], labels):\n"
        "        sub = tab[(tab.dataset_label == label)]\n"
        "        sub = sub[sub.num_layers == sub.num_layers.max()]\n"
        "        for (act, slope), line in sub.groupby(['activation', 'negative_slope']):\n"
        "            ax.plot(line.layer + 1, line['mean'], marker='.',\n"
        "                    label=act if act != 'leaky_relu' else f'leaky {slope:g}')\n"
        "        if log_y:\n"
        "            ax.set_yscale('log')\n"
        "        ax.set_xlabel('layer')\n"
        "        ax.set_ylabel(metric)\n"
        "        ax.set_title(f'{label}: {metric}')\n"
        "axes[0][0].legend(fontsize=7)\n"
        "fig.tight_layout()"
    ),
    nbf.v4.new_markdown_cell("## Learned PReLU slopes per layer"),
    nbf.v4.new_code_cell(
        "import numpy as np\n\n"
        "prelu = results.runs[(results.runs.act == 'prelu') & (results.runs.status == 'ok')]\n"
        "for _, run in prelu.iterrows():\n"
        "    per_layer = [float(np.mean(v)) for v in run.slopes.values()]\n"
        "    print(run.dataset_label, run.activation, run.num_layers, np.round(per_layer, 3))"
    ),
]
nb = nbf.v4.new_notebook(
    cells=cells,
    metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
)
nbf.write(nb, "notebooks/02_oversmoothing_sweep.ipynb")
