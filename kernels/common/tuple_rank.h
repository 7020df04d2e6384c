// The largest rank of an index tuple any op accepts: kernels keep a tuple's
// per-dimension terms in fixed-size arrays of this length.
#pragma once

namespace indexgrad {

constexpr int kMaxTupleRank = 8;

}  // namespace indexgrad
