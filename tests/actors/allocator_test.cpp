// A session keeps freed column buffers mapped (glibc): a block of a batch's buffers' size comes from the
// heap, not from its own mmap, so each batch does not page-fault its buffers in afresh.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "flow/session.hpp"

// Only where glibc's malloc serves the process (AddressSanitizer brings its own allocator).
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>

TEST_CASE("session: blocks up to 32 MiB come from the heap, not from a mapping of their own", "[session][allocator]") {
  const flow::session session;
  // Larger than glibc's default threshold ever grows to on its own before such a block was freed.
  constexpr std::size_t block_bytes = std::size_t{24} << 20;
  const auto mapped_before = mallinfo2().hblks;
  auto* block = static_cast<volatile char*>(std::malloc(block_bytes));
  REQUIRE(block != nullptr);
  block[0] = 1;
  const auto mapped_with_block = mallinfo2().hblks;
  std::free(const_cast<char*>(block));
  CHECK(mapped_with_block == mapped_before);
}
#endif
