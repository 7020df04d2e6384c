"""Python test: load libindexgrad.so, call torch.ops.indexgrad.sparse_contract,
compare with a dense reference and run torch.autograd.gradcheck.

Usage: python3 sparse_contract_test.py path/to/libindexgrad.so
"""
import sys
import unittest

import torch

LIBRARY = sys.argv.pop(1)


def dense_reference(indices, values, out_shape, x):
    batch = x.shape[0]
    out_numel = 1
    for s in out_shape:
        out_numel *= s
    in_shape = list(x.shape[1:])
    w = torch.zeros(batch, out_numel, x[0].numel(), dtype=x.dtype)
    p = len(out_shape)
    for b in range(batch):
        for k in range(indices.shape[1]):
            t = indices[b, k].tolist()
            o = 0
            for d, s in enumerate(out_shape):
                o = o * s + t[d]
            i = 0
            for d, s in enumerate(in_shape):
                i = i * s + t[p + d]
            w[b, o, i] += values[b, k]
    return torch.bmm(w, x.reshape(batch, -1, 1)).reshape(batch, *out_shape)


def random_tuples(batch, nnz, bounds):
    return torch.stack([torch.randint(0, b, (batch, nnz)) for b in bounds], -1)


class SparseContractTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.ops.load_library(LIBRARY)

    def test_matches_dense(self):
        torch.manual_seed(0)
        indices = random_tuples(3, 50, [4, 2, 3, 5])
        values = torch.randn(3, 50, dtype=torch.double)
        x = torch.randn(3, 3, 5, dtype=torch.double)
        y = torch.ops.indexgrad.sparse_contract(indices, values, [4, 2], x)
        torch.testing.assert_close(y, dense_reference(indices, values, [4, 2], x))

    def test_gradcheck(self):
        torch.manual_seed(1)
        indices = random_tuples(2, 20, [4, 3])
        values = torch.randn(2, 20, dtype=torch.double, requires_grad=True)
        x = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
        self.assertTrue(torch.autograd.gradcheck(
            lambda v, xx: torch.ops.indexgrad.sparse_contract(indices, v, [4], xx),
            (values, x)))

    def test_one_matrix_for_every_row(self):
        # Batch-1 indices and values apply one matrix to every row of x.
        torch.manual_seed(2)
        indices = random_tuples(1, 30, [4, 5])
        values = torch.randn(1, 30, dtype=torch.double, requires_grad=True)
        x = torch.randn(6, 5, dtype=torch.double, requires_grad=True)
        y = torch.ops.indexgrad.sparse_contract(indices, values, [4], x)
        torch.testing.assert_close(
            y, dense_reference(indices.expand(6, 30, 2), values.expand(6, 30), [4], x))
        self.assertTrue(torch.autograd.gradcheck(
            lambda v, xx: torch.ops.indexgrad.sparse_contract(indices, v, [4], xx),
            (values, x)))

    def test_bad_index_is_an_error(self):
        indices = torch.tensor([[[0, 7]]])
        with self.assertRaisesRegex(RuntimeError, r"indices\[\.\.\., 1\] must lie in \[0, 3\)"):
            torch.ops.indexgrad.sparse_contract(
                indices, torch.ones(1, 1), [2], torch.ones(1, 3))


if __name__ == "__main__":
    unittest.main()
