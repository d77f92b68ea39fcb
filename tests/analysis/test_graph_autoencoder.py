"""The graph autoencoder's edge-probability bias: exact per-bucket sums against a dense
reference, counts that add up, and a trained GAE on a small graph."""

import math

import pytest
import torch

from gnnleaky.analysis import edge_probability_bias, gae_bias
from gnnleaky.datasets import load
from tests.graphs import random_graph


def _dense_reference(z, edge_index, bins, pos=None, neg=None):
    """Per bucket (predicted sum, positives, count) by looping over node pairs."""
    n = z.size(0)
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[edge_index[0], edge_index[1]] = True
    adj |= adj.clone().t()
    adj.fill_diagonal_(False)
    deg = adj.sum(1)
    bucket = [max(k for k, lo in enumerate(bins) if d >= lo) for d in deg.tolist()]
    k = len(bins)
    pred, posc, count = [0.0] * k, [0] * k, [0] * k
    z = z.double()
    if pos is None:
        for i in range(n):
            for j in range(n):
                if i != j:
                    b = bucket[i]
                    pred[b] += float(torch.sigmoid(z[i] @ z[j]))
                    posc[b] += int(adj[i, j])
                    count[b] += 1
    else:
        for label, pairs in ((1, pos), (0, neg)):
            for u, v in pairs.t().tolist():
                p = float(torch.sigmoid(z[u] @ z[v]))
                for end in (u, v):
                    pred[bucket[end]] += p
                    posc[bucket[end]] += label
                    count[bucket[end]] += 1
    return pred, posc, count


@pytest.mark.parametrize("pairs", ["all", "heldout"])
def test_edge_probability_bias_matches_a_dense_reference(pairs):
    _, ei = random_graph(n=25, e=60, f=4, seed=3)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(25, 3, generator=g)
    pos = torch.randint(0, 25, (2, 12), generator=g)
    neg = torch.randint(0, 25, (2, 12), generator=g)
    bins = [0, 3, 5, 8]
    kw = {} if pairs == "all" else {"pos_edge_index": pos, "neg_edge_index": neg}
    df = edge_probability_bias(z, ei, pairs=pairs, degree_bins=bins, chunk_size=7, **kw)
    pred, posc, count = _dense_reference(z, ei, bins, *((pos, neg) if kw else ()))
    assert df.num_pairs.tolist() == count
    assert df.positives.tolist() == posc
    for b in range(len(bins)):
        if count[b]:
            assert df.predicted[b] == pytest.approx(pred[b] / count[b], abs=1e-12)
            assert df.bias[b] == pytest.approx((pred[b] - posc[b]) / count[b], abs=1e-12)
        else:
            assert math.isnan(df.bias[b])
    assert df.nodes.sum() == 25
    if pairs == "all":
        # every ordered pair once; every edge from both ends
        assert df.num_pairs.sum() == 25 * 24
        assert df.positives.sum() == edge_probability_bias(z, ei).positives.sum()
    else:
        assert df.num_pairs.sum() == 2 * 24 and df.positives.sum() == 2 * 12


def test_edge_probability_bias_known_answers():
    # a 4-cycle: degree 2 everywhere; density 2/3; zero embeddings predict 1/2
    ring = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    df = edge_probability_bias(torch.zeros(4, 2), ring, degree_bins=[0, 2, 3])
    assert df.nodes.tolist() == [0, 4, 0]
    assert df.observed[1] == pytest.approx(8 / 12)
    assert df.bias[1] == pytest.approx(0.5 - 8 / 12)
    # duplicates, both directions and self-loops do not change the observed graph
    messy = torch.cat([ring, ring.flip(0), ring, torch.tensor([[0], [0]])], 1)
    assert edge_probability_bias(torch.zeros(4, 2), messy, degree_bins=[0, 2, 3]).equals(df)
    # huge aligned embeddings predict 1 everywhere: bias = 1 - density
    big = edge_probability_bias(torch.full((4, 2), 30.0), ring, degree_bins=[0])
    assert big.bias[0] == pytest.approx(1 - 8 / 12)


def test_edge_probability_bias_refuses_bad_input():
    ring = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    z = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"pairs must be one of \['all', 'heldout'\]"):
        edge_probability_bias(z, ring, pairs="some")
    with pytest.raises(ValueError, match="needs pos_edge_index and neg_edge_index"):
        edge_probability_bias(z, ring, pairs="heldout")
    for bins in ([1, 2], [0, 2, 2], [0, 1.5], [], [0, True]):
        with pytest.raises(ValueError, match="degree_bins must be strictly increasing ints"):
            edge_probability_bias(z, ring, degree_bins=bins)
    with pytest.raises(ValueError, match="z contains NaN"):
        edge_probability_bias(torch.full((4, 2), math.nan), ring)
    with pytest.raises(ValueError, match="edge_index refers to node 3"):
        edge_probability_bias(torch.zeros(3, 2), ring)
    with pytest.raises(ValueError, match="pos_edge_index"):
        edge_probability_bias(
            z,
            ring,
            pairs="heldout",
            pos_edge_index=torch.tensor([[0], [9]]),
            neg_edge_index=ring,
        )
    with pytest.raises(ValueError, match="chunk_size"):
        edge_probability_bias(z, ring, chunk_size=0)


@pytest.fixture(scope="module")
def small_graph():
    return load("csbm", num_nodes=80, avg_degree=6, num_features=8, seed=0)


def test_gae_bias_on_a_small_graph(small_graph):
    df = gae_bias(small_graph, [0.0, 1.0], seeds=[0, 1], epochs=5, degree_bins=[0, 4, 8])
    assert set(df.columns) >= {
        "negative_slope", "seed", "pairs", "bucket", "num_pairs", "positives",
        "predicted", "observed", "bias", "status", "best_epoch", "test_auc", "test_ap",
    }  # fmt: skip
    n = small_graph.num_nodes
    num_edges = edge_probability_bias(torch.zeros(n, 1), small_graph.edge_index).positives.sum()
    runs = df.groupby(["negative_slope", "seed", "pairs"])
    assert len(runs) == 2 * 2 * 2
    for (_, _, pairs), run in runs:
        assert run.nodes.sum() == n
        if pairs == "all":
            assert run.num_pairs.sum() == n * (n - 1)
            assert run.positives.sum() == num_edges  # 2 |E|: the full graph, held-out incl.
        else:  # test split: as many negatives as positives, each counted from both ends
            assert run.num_pairs.sum() == 2 * run.positives.sum()  # observed rate 1/2
        filled = run[run.num_pairs > 0]
        assert filled[["predicted", "observed", "bias"]].notna().all().all()
        assert ((filled.predicted > 0) & (filled.predicted < 1)).all()
    assert (df.status == "ok").all() and df.test_auc.between(0, 1).all()
    # a seed fixes split, init and negatives: the same call gives the same numbers
    again = gae_bias(small_graph, [1.0], seeds=[1], epochs=5, degree_bins=[0, 4, 8])
    same = df[(df.negative_slope == 1.0) & (df.seed == 1)].reset_index(drop=True)
    assert again.bias.tolist() == pytest.approx(same.bias.tolist(), nan_ok=True)


def test_gae_bias_refuses_bad_input(small_graph):
    for bad in (math.nan, math.inf, "a"):
        with pytest.raises(ValueError, match="negative_slope must be a finite float"):
            gae_bias(small_graph, [0.2, bad], epochs=1)
    with pytest.raises(ValueError, match="negative_slopes must hold at least one"):
        gae_bias(small_graph, [], epochs=1)
    with pytest.raises(ValueError, match="seeds must be a non-empty sequence of ints"):
        gae_bias(small_graph, [0.2], seeds=[0.5], epochs=1)
    with pytest.raises(ValueError, match=r"num_test must be a share in \(0, 1\)"):
        gae_bias(small_graph, [0.2], num_test=0.0)
    with pytest.raises(ValueError, match="num_val must be a finite float"):
        gae_bias(small_graph, [0.2], num_val=math.nan)
    with pytest.raises(ValueError, match="num_val \\+ num_test must be < 1"):
        gae_bias(small_graph, [0.2], num_val=0.5, num_test=0.6)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        gae_bias(small_graph, [0.2], epochs=0)
    with pytest.raises(ValueError, match="degree_bins"):
        gae_bias(small_graph, [0.2], degree_bins=[2, 4])
    with pytest.raises(ValueError, match="data must have 'x'"):
        gae_bias(object(), [0.2])
