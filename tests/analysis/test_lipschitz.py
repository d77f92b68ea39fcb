import math

import pytest
import torch
from torch_geometric.utils import to_undirected

from gnnleaky.analysis import (
    fit_node_classifier,
    lipschitz_bound,
    lipschitz_lower_bound,
    operator_norm,
    with_activation,
)
from gnnleaky.nn import LeakyGNN


def _path(n):
    src = torch.arange(n - 1)
    return to_undirected(torch.stack([src, src + 1]))


def test_operator_norm_known_answers(csbm):
    # Undirected GCN operator: largest eigenvalue exactly 1 (eigenvector D~^{1/2} 1).
    ei, n = csbm.edge_index, csbm.num_nodes
    assert math.isclose(operator_norm(ei, n, method="dense"), 1.0, rel_tol=1e-12)
    assert math.isclose(operator_norm(ei, n, method="sparse"), 1.0, rel_tol=1e-10)
    # Path graph adjacency: spectrum 2 cos(pi k / (n + 1)).
    for n in (5, 12):
        expected = 2 * math.cos(math.pi / (n + 1))
        assert math.isclose(operator_norm(_path(n), normalize=False), expected, rel_tol=1e-12)
        assert math.isclose(
            operator_norm(_path(n), normalize=False, method="sparse"), expected, rel_tol=1e-10
        )


def test_operator_norm_of_a_directed_graph_is_computed_not_assumed():
    star_in = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 0, 0, 0]])  # all edges into node 0
    dense = operator_norm(star_in, method="dense")
    assert dense > 1.0 + 1e-3
    assert math.isclose(dense, operator_norm(star_in, method="sparse"), rel_tol=1e-10)
    with pytest.raises(ValueError, match="method"):
        operator_norm(star_in, method="lanczos")


def test_one_layer_bound_is_tight(csbm):
    model = LeakyGNN(8, 16, 1, 5)  # X -> A X W^T + b: Lipschitz exactly ||A|| ||W||
    bound, layers = lipschitz_bound(model, csbm.edge_index, return_layers=True)
    w = float(torch.linalg.matrix_norm(model.convs[0].lin.weight.detach().double(), ord=2))
    assert math.isclose(bound, w, rel_tol=1e-6)
    assert layers.factor.tolist() == [bound]
    low = lipschitz_lower_bound(model, csbm.x, csbm.edge_index, restarts=1, steps=10)
    assert low <= bound * (1 + 1e-9)
    assert low >= 0.999 * bound


def test_two_layer_linear_bound_is_tight(csbm):
    # Identity activations and W2 = W1^T: f = A^2 X (W1^T W1) + b, with ||A^2|| = 1 and
    # ||W1^T W1|| = ||W1||^2, so the product of norms is attained.
    model = LeakyGNN(8, 16, 2, 8, act="identity")
    with torch.no_grad():
        model.convs[1].lin.weight.copy_(model.convs[0].lin.weight.T)
    bound = lipschitz_bound(model, csbm.edge_index)
    low = lipschitz_lower_bound(model, csbm.x, csbm.edge_index, restarts=1, steps=10)
    assert bound * 0.999 <= low <= bound * (1 + 1e-9)


def test_slope_above_one_multiplies_the_bound(csbm):
    model = LeakyGNN(8, 16, 3, 2, act="leaky_relu", act_kwargs={"negative_slope": 0.2})
    steep = with_activation(model, "leaky_relu", negative_slope=1.5)
    b_low = lipschitz_bound(model, csbm.edge_index)
    b_steep = lipschitz_bound(steep, csbm.edge_index)
    assert math.isclose(b_steep, b_low * 1.5**2, rel_tol=1e-12)  # two activated layers
    prelu = with_activation(model, "prelu", mode="channel", init=0.5)
    with torch.no_grad():
        prelu.acts[0].weight[3] = -2.5  # the largest |slope| of the layer counts
    _, layers = lipschitz_bound(prelu, csbm.edge_index, return_layers=True)
    assert layers.slope_factor.tolist() == [2.5, 1.0, 1.0]


@pytest.fixture(scope="module")
def trained(csbm):
    models = {}
    for name, kw in {
        "leaky_0.2": {"act": "leaky_relu", "act_kwargs": {"negative_slope": 0.2}},
        "leaky_1.5": {"act": "leaky_relu", "act_kwargs": {"negative_slope": 1.5}},
        "prelu_bn": {"act": "prelu", "act_kwargs": {"mode": "channel"}, "norm": "batch_norm"},
        "residual": {"act": "leaky_relu", "act_kwargs": {"negative_slope": 1.5}, "residual": True},
    }.items():
        torch.manual_seed(1)
        model = LeakyGNN(8, 16, 3, 2, **kw)
        fit_node_classifier(model, csbm, epochs=30, lr=0.02)
        models[name] = model
    return models


@pytest.mark.parametrize("name", ["leaky_0.2", "leaky_1.5", "prelu_bn", "residual"])
def test_bound_dominates_empirical_on_trained_models(csbm, trained, name):
    model = trained[name]
    assert not model.training
    bound, layers = lipschitz_bound(model, csbm.edge_index, return_layers=True)
    low = lipschitz_lower_bound(model, csbm.x, csbm.edge_index, restarts=2, steps=15)
    assert 0 < low <= bound
    if name == "leaky_1.5":
        assert layers.slope_factor.tolist() == [1.5, 1.5, 1.0]
        # Larger perturbations explore other linear pieces; still below the bound.
        far = lipschitz_lower_bound(
            model, csbm.x, csbm.edge_index, restarts=2, steps=15, radius=1.0, seed=1
        )
        assert 0 < far <= bound
    if name == "residual":
        assert layers.residual.tolist() == [False, True, False]


def test_batch_norm_scale_enters_the_bound(csbm, trained):
    model = trained["prelu_bn"]
    bn = model.norms[0].module
    expected = float(
        (bn.weight.detach().double().abs() / (bn.running_var.double() + bn.eps).sqrt()).max()
    )
    _, layers = lipschitz_bound(model, csbm.edge_index, return_layers=True)
    assert math.isclose(layers.norm_factor[0], expected, rel_tol=1e-12)
    model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            lipschitz_bound(model, csbm.edge_index)
    finally:
        model.eval()


def test_unsupported_models_are_refused(csbm):
    ei = csbm.edge_index
    with pytest.raises(ValueError, match="GCN models only"):
        lipschitz_bound(LeakyGNN(8, 16, 2, 2, conv="sage"), ei)
    with pytest.raises(ValueError, match="add_self_loops=True"):
        lipschitz_bound(LeakyGNN(8, 16, 2, 2, add_self_loops=False), ei)
    with pytest.raises(ValueError, match="jk"):
        lipschitz_bound(LeakyGNN(8, 16, 2, 2, jk="cat"), ei)
    with pytest.raises(ValueError, match="norm"):
        lipschitz_bound(LeakyGNN(8, 16, 2, 2, norm="layer_norm"), ei)
    with pytest.raises(ValueError, match="LeakyGNN"):
        lipschitz_bound(torch.nn.Linear(2, 2), ei)
    with pytest.raises(ValueError, match="radius"):
        lipschitz_lower_bound(LeakyGNN(8, 16, 2, 2), csbm.x, ei, radius=0.0)


def test_lower_bound_is_seeded_and_leaves_the_model_alone(csbm):
    model = LeakyGNN(8, 16, 2, 2, act="leaky_relu", dropout=0.5)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = lipschitz_lower_bound(model, csbm.x, csbm.edge_index, restarts=2, steps=5, seed=4)
    b = lipschitz_lower_bound(model, csbm.x, csbm.edge_index, restarts=2, steps=5, seed=4)
    assert a == b
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
