"""Link prediction: the edge split and the scores of known scorers."""

from __future__ import annotations

import torch

from gnnleaky.datasets import load
from gnnleaky.nn import GCN
from gnnleaky.tasks import LinkPrediction, link_scores, link_split
from gnnleaky.train import fit


def _graph():
    return load("csbm", num_nodes=300, avg_degree=10, homophily=0.9, seed=0)


def _edges(ei):
    return {tuple(e) for e in ei.t().tolist()}


def test_split_holds_out_edges_and_samples_non_edges():
    data = _graph()
    train, val, test = link_split(data, val_ratio=0.1, test_ratio=0.2, seed=1)
    graph = _edges(data.edge_index)
    mp = _edges(train.edge_index)
    for part in (val, test):
        pos, neg = _edges(part.pos_edge_label_index), _edges(part.neg_edge_label_index)
        assert pos <= graph and not (pos & mp)  # held-out edges are real, not trained on
        assert not (neg & graph)  # sampled non-edges are not edges
        assert len(pos) == len(neg)
    # undirected: a tenth of the undirected edges for validation
    assert val.pos_edge_label_index.size(1) == int(0.1 * data.edge_index.size(1) // 2)
    again = link_split(data, val_ratio=0.1, test_ratio=0.2, seed=1)[2]
    assert torch.equal(again.pos_edge_label_index, test.pos_edge_label_index)


def test_perfect_scorer_has_auc_and_ap_one_and_random_about_half():
    _, _, test = link_split(_graph(), val_ratio=0.05, test_ratio=0.5, seed=0)
    graph = _edges(_graph().edge_index)

    def perfect(ei):  # knows the graph
        return torch.tensor([float(tuple(e) in graph) for e in ei.t().tolist()])

    pos, neg = test.pos_edge_label_index, test.neg_edge_label_index
    assert link_scores(perfect(pos), perfect(neg)) == (1.0, 1.0)
    g = torch.Generator().manual_seed(0)
    aucs = [
        link_scores(torch.rand(pos.size(1), generator=g), torch.rand(neg.size(1), generator=g))[0]
        for _ in range(20)
    ]
    mean = sum(aucs) / len(aucs)
    assert abs(mean - 0.5) < 0.02, mean
    # an inverted perfect scorer ranks every non-edge first
    assert link_scores(-perfect(pos), -perfect(neg))[0] == 0.0


def test_gae_learns_the_links_of_a_homophilous_graph():
    # ten classes, 95% of edges inside a class: the class alone ranks a held-out edge
    # above a random non-edge with AUC about 0.5 + (0.95 - 0.1) / 2 = 0.925
    data = load("csbm", num_nodes=300, num_classes=10, homophily=0.95, snr=3.0, seed=0)
    task = LinkPrediction(data, seed=0)
    torch.manual_seed(0)
    model = GCN(data.num_features, 32, 2, 16)
    [rec] = fit(model, task, epochs=40, lr=0.01, weight_decay=0.0)
    assert rec.status == "ok"
    assert rec.scores["test"] > 0.8 and rec.scores["test_ap"] > 0.8
    assert rec.scores["val"] == max(c["val"] for c in rec.curve)  # selected on validation


def test_scores_equal_scikit_learn_with_ties():
    from sklearn.metrics import average_precision_score, roc_auc_score

    g = torch.Generator().manual_seed(3)
    pos = torch.randint(0, 6, (40,), generator=g).float()  # many ties
    neg = torch.randint(0, 5, (55,), generator=g).float()
    label = [1] * 40 + [0] * 55
    s = torch.cat([pos, neg]).numpy()
    auc, ap = link_scores(pos, neg)
    assert abs(auc - roc_auc_score(label, s)) < 1e-12
    assert abs(ap - average_precision_score(label, s)) < 1e-12
