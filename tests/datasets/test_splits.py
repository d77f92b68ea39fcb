"""Random splits with k training nodes per class (the sweep's label-rate axis)."""

import pytest
import torch
from torch_geometric.data import Data

from gnnleaky.datasets import RANDOM_SPLIT_TEST, RANDOM_SPLIT_VAL, per_class_split


def _graph(num_nodes=3000, num_classes=3):
    """Labels only matter here: a graph with no edges, classes of (near) equal size."""
    y = torch.arange(num_nodes) % num_classes
    data = Data(x=torch.ones(num_nodes, 1), edge_index=torch.zeros(2, 0, dtype=torch.long), y=y)
    data.train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    return data


@pytest.mark.parametrize("k", [1, 5, 20])
def test_k_training_nodes_per_class_and_disjoint_masks(k):
    data = _graph()
    split = per_class_split(data, k, seed=3)
    assert torch.bincount(split.y[split.train_mask]).tolist() == [k] * 3
    assert int(split.val_mask.sum()) == RANDOM_SPLIT_VAL
    assert int(split.test_mask.sum()) == RANDOM_SPLIT_TEST
    masks = torch.stack([split.train_mask, split.val_mask, split.test_mask])
    assert int(masks.sum(0).max()) == 1  # no node in two sets
    assert data.train_mask is not split.train_mask  # the input is not modified


def test_seeded_and_independent_of_global_state():
    data = _graph()
    torch.manual_seed(0)
    a = per_class_split(data, 5, seed=1)
    state = torch.random.get_rng_state()
    torch.manual_seed(99)
    b = per_class_split(data, 5, seed=1)
    assert torch.equal(a.train_mask, b.train_mask) and torch.equal(a.test_mask, b.test_mask)
    c = per_class_split(data, 5, seed=2)
    assert not torch.equal(a.train_mask, c.train_mask)
    torch.manual_seed(0)
    per_class_split(data, 5, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # caller's stream untouched


def test_small_graph_shares_the_rest_between_validation_and_test():
    split = per_class_split(_graph(num_nodes=200, num_classes=2), 10, seed=0)
    rest = 200 - 20
    assert int(split.val_mask.sum()) == rest // 3
    assert int(split.test_mask.sum()) == rest - rest // 3


@pytest.mark.parametrize(
    ("k", "seed", "match"),
    [
        (0, 0, "train_per_class must be an int >= 1"),
        (2.5, 0, "train_per_class must be an int >= 1"),
        (5, -1, "seed must be an int >= 0"),
        (500, 0, "leaves no node of the smallest class"),
    ],
)
def test_bad_arguments(k, seed, match):
    with pytest.raises(ValueError, match=match):
        per_class_split(_graph(num_nodes=300, num_classes=2), k, seed=seed)
