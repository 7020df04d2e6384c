"""Python test of the sparse layer's ops through torch.ops: sample_tuples
gives the neighbours first, spread_values matches a plain reference and
passes torch.autograd.gradcheck.

Usage: python3 spread_values_test.py path/to/libindexgrad.so
"""
import math
import sys
import unittest

import torch

LIBRARY = sys.argv.pop(1)


def reference(points, means, sigmas, values):
    """Algorithm 1 of Bloem et al. 2018 with loops, one chunk per row."""
    batch, k, s, r = points.shape
    out = torch.zeros(batch, k, s, dtype=torch.double)
    for b in range(batch):
        first = {}
        for i in range(k):
            for j in range(s):
                first.setdefault(tuple(points[b, i, j].tolist()), (i, j))
        for i in range(k):
            p = {}
            for t in first:
                m = sum((t[d] - means[b, i, d].item()) ** 2 / sigmas[b, i, d].item()
                        for d in range(r))
                p[t] = math.exp(-0.5 * m)
            total = sum(p.values())
            for t, (ii, jj) in first.items():
                out[b, ii, jj] += values[b, i].item() * p[t] / total
    return out


class SpreadValuesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.ops.load_library(LIBRARY)

    def sample(self, seed=0):
        torch.manual_seed(seed)
        means = torch.rand(2, 3, 2, dtype=torch.double) * torch.tensor([5.0, 4.0])
        points = torch.ops.indexgrad.sample_tuples(means, [6, 5], 2, 2, [3, 3], seed)
        sigmas = torch.rand(2, 3, 2, dtype=torch.double) + 0.5
        values = torch.randn(2, 3, dtype=torch.double)
        return points, means, sigmas, values

    def test_neighbours_first(self):
        means = torch.tensor([[[1.5, 2.25]]], dtype=torch.double)
        points = torch.ops.indexgrad.sample_tuples(means, [4, 5], 0, 0, [2, 2], 0)
        self.assertEqual(points[0, 0].tolist(), [[1, 2], [1, 3], [2, 2], [2, 3]])

    def test_matches_reference(self):
        points, means, sigmas, values = self.sample()
        out = torch.ops.indexgrad.spread_values(points, means, sigmas, values, 0, 0.0)
        torch.testing.assert_close(out, reference(points, means, sigmas, values))

    def test_gradcheck(self):
        points, means, sigmas, values = self.sample(1)
        inputs = tuple(t.clone().requires_grad_() for t in (means, sigmas, values))
        self.assertTrue(torch.autograd.gradcheck(
            lambda m, s, v: torch.ops.indexgrad.spread_values(points, m, s, v, 0, 1e-12),
            inputs))

    def test_bad_sigma_is_an_error(self):
        points, means, sigmas, values = self.sample()
        with self.assertRaisesRegex(RuntimeError, "sigmas \\(variances\\) must be positive"):
            torch.ops.indexgrad.spread_values(points, means, -sigmas, values, 0, 0.0)


if __name__ == "__main__":
    unittest.main()
