// The aggregation's table on an on-disk state backend (flow/state_backend.hpp): a key_value_store holds
// every group (its encoded keys to its accumulators in the cell encoding), and the in-memory hash table is
// only the cache of the groups touched since the last emit, so memory follows one epoch's groups.
#pragma once

#include <memory>
#include <string>

#include "flow/keys.hpp"
#include "flow/operators.hpp"
#include "flow/state_backend.hpp"

namespace flow::detail {

class stored_aggregate_state final : public aggregate_state {
 public:
  stored_aggregate_state(const aggregate_operator& aggregate, std::unique_ptr<key_value_store> store);

  // A group the cache meets for the first time is read from the store and merged in.
  std::size_t update(const batch& input, timestamp watermark = timestamp{INT64_MIN}) override;
  void merge(const batch& state_rows) override;
  void replace_groups(const batch& state_rows) override;
  // Writes the cached groups to the store in one write batch and empties the cache (flush), and emits:
  // update, the cached groups; complete, every stored group; append, the stored groups whose window
  // ended, which it removes from the store.
  batch emit(output_mode mode, timestamp watermark) override;
  batch snapshot() const override;
  batch changed_since_emit() const override { return cache_->changed_since_emit(); }
  std::size_t num_changed() const override { return cache_->num_changed(); }
  batch groups_since(std::size_t first) const override { return cache_->groups_since(first); }
  void restore(const batch& state_rows) override;
  // Flushes first (so nothing is changed since the last emit afterwards), then removes expired groups.
  batch evict_groups(timestamp watermark) override;
  void clear() override;
  std::size_t num_groups() const override { return stored_groups_ + cached_new_; }
  std::size_t memory_bytes() const override { return cache_->memory_bytes() + store_->memory_bytes(); }

  // Writes the cached groups to the store in one write batch and empties the cache.
  void flush();
  // The store as of the last flush (flow::error when the cache holds groups).
  void snapshot_to(const std::string& directory) const;
  void restore_from(const std::string& directory);

 private:
  // Looks the cache's groups first.. up in the store: merges the stored ones in (fold) or only counts them.
  void read_stored(std::size_t first, bool fold);
  // f(state rows) for the stored groups, a chunk at a time.
  template <class F>
  void for_each_stored(F&& f) const;
  // Removes the stored groups whose window ended at or before watermark; returns them in state schema.
  batch expire(timestamp watermark);
  void count_stored();

  const aggregate_operator* aggregate_;  // outlives its states: the runtime holds the graph
  std::unique_ptr<aggregate_state> cache_;
  std::unique_ptr<key_value_store> store_;
  key_layout layout_;
  schema_ptr key_schema_, value_schema_;  // the state schema's key and accumulator columns
  std::size_t stored_groups_ = 0;         // groups in the store
  std::size_t cached_new_ = 0;            // cached groups not in the store
};

}  // namespace flow::detail
