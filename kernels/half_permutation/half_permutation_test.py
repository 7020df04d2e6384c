"""Python test: torch.ops.indexgrad.half_permutation / half_permutation_apply
against a dense matrix built from their output, torch.autograd.gradcheck, and
clear errors.

Usage: python3 half_permutation_test.py path/to/libindexgrad.so
"""
import sys
import unittest

import torch

LIBRARY = sys.argv.pop(1)


class HalfPermutationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.ops.load_library(LIBRARY)

    def test_columns_sum_to_one_and_apply_is_dense_product(self):
        torch.manual_seed(0)
        keys = torch.randn(2, 8, dtype=torch.double)
        rows, weights = torch.ops.indexgrad.half_permutation(keys, 1, 3, 10.0, 1)
        torch.testing.assert_close(weights.sum(2), torch.ones(2, 8, dtype=torch.double))
        dense = torch.zeros(2, 8, 8, dtype=torch.double)
        cols = torch.arange(8).view(1, 8, 1).expand(2, 8, 4)
        batch = torch.arange(2).view(2, 1, 1).expand(2, 8, 4)
        dense.index_put_((batch, rows, cols), weights, accumulate=True)
        v = torch.randn(2, 8, 3, dtype=torch.double)
        torch.testing.assert_close(
            torch.ops.indexgrad.half_permutation_apply(rows, weights, v, False), dense @ v)
        torch.testing.assert_close(
            torch.ops.indexgrad.half_permutation_apply(rows, weights, v, True),
            dense.transpose(1, 2) @ v)

    def test_gradcheck(self):
        keys = (torch.randperm(8, dtype=torch.double) * 0.1).view(1, 8).requires_grad_()
        v = torch.randn(1, 8, 2, dtype=torch.double)

        def f(k):
            rows, weights = torch.ops.indexgrad.half_permutation(k, 0, 4, 3.0, 2)
            return torch.ops.indexgrad.half_permutation_apply(rows, weights, v, False)
        self.assertTrue(torch.autograd.gradcheck(f, (keys,)))

    def test_nan_keys(self):
        with self.assertRaisesRegex(RuntimeError, "keys contain NaN or infinity"):
            torch.ops.indexgrad.half_permutation(
                torch.tensor([[0.0, float("nan")]]), 0, 2, 10.0, 0)


if __name__ == "__main__":
    unittest.main()
