// flow::encode's bytes without a buffer of the whole batch: what a serializer (CAF's, for batches that
// cross nodes) writes straight into its own buffer.
#pragma once

#include <cstddef>
#include <functional>

#include "flow/batch.hpp"

namespace flow {

// The size of encode(b).
std::size_t encoded_size(const batch& b);
// The bytes of encode(b), handed to out in order and in large pieces (a column's arrays, its characters,
// each in one piece where they lie in memory).
void encode_to(const batch& b, const std::function<void(const void*, std::size_t)>& out);

}  // namespace flow
