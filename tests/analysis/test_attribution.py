import pytest
import torch
from torch_geometric.explain import Explainer
from torch_geometric.utils import k_hop_subgraph

from gnnleaky.analysis import (
    Saliency,
    compare_saliency,
    fit_node_classifier,
    saliency,
    with_activation,
)
from gnnleaky.nn import LeakyGNN


@pytest.fixture(scope="module")
def model(csbm):
    torch.manual_seed(0)
    m = LeakyGNN(8, 16, 2, 2, act="leaky_relu", act_kwargs={"negative_slope": 0.2})
    fit_node_classifier(m, csbm, epochs=30)
    return m


def test_saliency_matches_autograd_and_stays_in_receptive_field(csbm, model):
    node = 7
    x = csbm.x.clone().requires_grad_(True)
    out = model(x, csbm.edge_index)
    target = int(out[node].argmax())
    out[node, target].backward()
    s = saliency(model, csbm.x, csbm.edge_index, node)
    assert torch.equal(s, x.grad.abs())
    assert torch.equal(saliency(model, csbm.x, csbm.edge_index, node, absolute=False), x.grad)
    subset, *_ = k_hop_subgraph(node, 2, csbm.edge_index, num_nodes=csbm.num_nodes)
    outside = torch.ones(csbm.num_nodes, dtype=torch.bool)
    outside[subset] = False
    assert (s[outside] == 0).all() and (s[subset].sum(1) > 0).any()
    # Several nodes: the gradient of the sum.
    both = saliency(model, csbm.x, csbm.edge_index, torch.tensor([3, 7]), absolute=False)
    parts = [saliency(model, csbm.x, csbm.edge_index, i, absolute=False) for i in (3, 7)]
    assert torch.allclose(both, parts[0] + parts[1], atol=1e-6)


def test_explainer_algorithm_matches_function(csbm, model):
    explainer = Explainer(
        model,
        algorithm=Saliency(),
        explanation_type="model",
        node_mask_type="attributes",
        edge_mask_type=None,
        model_config=dict(mode="multiclass_classification", task_level="node", return_type="raw"),
    )
    expl = explainer(csbm.x, csbm.edge_index, index=5)
    assert torch.equal(expl.node_mask, saliency(model, csbm.x, csbm.edge_index, 5))
    explainer = Explainer(
        model,
        algorithm=Saliency(),
        explanation_type="phenomenon",
        node_mask_type="object",
        edge_mask_type=None,
        model_config=dict(mode="multiclass_classification", task_level="node", return_type="raw"),
    )
    expl = explainer(csbm.x, csbm.edge_index, target=csbm.y, index=5)
    ref = saliency(model, csbm.x, csbm.edge_index, 5, csbm.y).sum(1, keepdim=True)
    assert torch.allclose(expl.node_mask, ref)
    with pytest.raises(ValueError):
        Explainer(
            model,
            algorithm=Saliency(),
            explanation_type="model",
            node_mask_type="attributes",
            edge_mask_type="object",
            model_config=dict(
                mode="multiclass_classification", task_level="node", return_type="raw"
            ),
        )


def test_relu_and_leaky_agree_where_nothing_is_silent(csbm, model):
    positive = with_activation(model, "leaky_relu", negative_slope=0.2)
    with torch.no_grad():
        positive.convs[0].bias.fill_(1e4)  # every pre-activation positive
    df = compare_saliency(positive, csbm.x, csbm.edge_index, torch.arange(4), negative_slope=0.5)
    assert df.cosine.to_numpy() == pytest.approx(1.0, abs=1e-12)
    assert (df.relu_norm == df.leaky_norm).all()


def test_relu_and_leaky_differ_on_silent_paths(csbm, model):
    idx = torch.arange(0, 40, 4)
    df = compare_saliency(model, csbm.x, csbm.edge_index, idx, negative_slope=0.2)
    assert df.node.tolist() == idx.tolist()
    assert (df.cosine < 1 - 1e-6).any()
    assert df.cosine.between(-1, 1).all() and df.spearman.between(-1, 1).all()
    same = compare_saliency(model, csbm.x, csbm.edge_index, idx, negative_slope=0.0)
    assert same.cosine.to_numpy() == pytest.approx(1.0, abs=1e-12)
    assert same.spearman.to_numpy() == pytest.approx(1.0, abs=1e-12)


def test_with_activation_copies():
    model = LeakyGNN(4, 8, 3, 2, act="relu")
    prelu = with_activation(model, "prelu", mode="channel", init=0.1)
    assert isinstance(model.acts[0], torch.nn.ReLU)
    assert prelu.acts[1].weight.shape == (8,)
    assert prelu.convs[0].lin.weight is not model.convs[0].lin.weight
    assert torch.equal(prelu.convs[0].lin.weight, model.convs[0].lin.weight)
    with pytest.raises(ValueError, match="acts"):
        with_activation(torch.nn.Linear(2, 2), "relu")
    with pytest.raises(ValueError, match="index"):
        saliency(model, torch.randn(3, 4), torch.tensor([[0, 1], [1, 0]]), index=5)
