"""Known results on Cora's public split (skipped with a reason when Cora is absent)."""

import pytest
import torch
import torch.nn.functional as F

from gnnleaky.nn import LeakyGNN, param_groups
from tests.conftest import load_or_skip

pytestmark = pytest.mark.data


def _train_gcn(data, seed, act="leaky_relu", act_kwargs=None, epochs=200):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LeakyGNN(
            data.num_features,
            64,
            2,
            data.num_classes,
            dropout=0.5,
            act=act,
            act_kwargs=act_kwargs,
            cached=True,
        )
        opt = torch.optim.Adam(param_groups(model, weight_decay=5e-4), lr=0.01)
        best_val, test_at_best = -1.0, 0.0
        for _ in range(epochs):
            model.train()
            opt.zero_grad()
            out = model(data.x, data.edge_index)
            F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                pred = model(data.x, data.edge_index).argmax(-1)
            val = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
            test = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
            if val > best_val:
                best_val, test_at_best = val, test
    return test_at_best


def test_two_layer_leaky_gcn_reaches_79_percent_on_cora():
    data = load_or_skip("cora")
    accs = [_train_gcn(data, seed, act_kwargs={"negative_slope": 0.2}) for seed in range(3)]
    # Kipf & Welling report 81.5% for ReLU; selection by validation accuracy, mean of 3 seeds.
    assert sum(accs) / 3 >= 0.79, accs
