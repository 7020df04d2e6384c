"""Python test: torch.ops.indexgrad.gaussian_splat against a dense formula,
torch.autograd.gradcheck, and a clear error for bad stddev.

Usage: python3 gaussian_splat_test.py path/to/libindexgrad.so
"""
import sys
import unittest

import torch

LIBRARY = sys.argv.pop(1)


def dense(points, stddev, h, w):
    ys = torch.arange(h, dtype=points.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=points.dtype).view(1, 1, 1, w)
    d2 = (ys - points[..., 0, None, None]) ** 2 + (xs - points[..., 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * stddev ** 2)).sum(1)


class GaussianSplatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.ops.load_library(LIBRARY)

    def test_matches_dense(self):
        torch.manual_seed(0)
        p = torch.rand(2, 6, 2, dtype=torch.double) * 12 - 1
        out = torch.ops.indexgrad.gaussian_splat(p, 1.2, 10, 11, 0.0)
        torch.testing.assert_close(out, dense(p, 1.2, 10, 11))

    def test_gradcheck(self):
        torch.manual_seed(1)
        p = (torch.rand(1, 4, 2, dtype=torch.double) * 7).requires_grad_()
        self.assertTrue(torch.autograd.gradcheck(
            lambda q: torch.ops.indexgrad.gaussian_splat(q, 0.9, 8, 8, 1e-12), (p,)))

    def test_bad_stddev(self):
        with self.assertRaisesRegex(RuntimeError, "stddev must be a positive finite number"):
            torch.ops.indexgrad.gaussian_splat(torch.zeros(1, 1, 2), -1.0, 4, 4, 0.0)


if __name__ == "__main__":
    unittest.main()
