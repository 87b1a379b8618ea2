// State backends: where keyed operator state lives. "memory" (the default) keeps every key in the
// operator's own hash index; any other backend is a key_value_store registered under its name (the
// connectors register "rocksdb"), which holds the keys on disk while the operator keeps in memory only
// the keys one epoch touches. The runtime picks the backend per query and hands it to every state it makes
// (operator_state::use_backend).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flow {

struct state_backend_config {
  std::string kind = "memory";  // "memory" or a name given to register_state_backend
  // Memory knobs of on-disk backends (RocksDB: the block cache and the memtable of each instance).
  std::size_t block_cache_bytes = std::size_t{32} << 20;
  std::size_t write_buffer_bytes = std::size_t{4} << 20;
};

// Puts and removes applied at once (all or none).
class key_value_batch {
 public:
  void put(std::string_view key, std::string_view value) { writes_.push_back({std::string(key), std::string(value)}); }
  void remove(std::string_view key) { writes_.push_back({std::string(key), std::nullopt}); }
  bool empty() const { return writes_.empty(); }
  std::size_t size() const { return writes_.size(); }
  struct write {
    std::string key;
    std::optional<std::string> value;  // nullopt: remove
  };
  const std::vector<write>& writes() const { return writes_; }

 private:
  std::vector<write> writes_;
};

// Bytes to bytes, kept by a backend in its working directory. Errors are flow::error naming the
// directory and what to do.
class key_value_store {
 public:
  virtual ~key_value_store() = default;
  // False when the key has no value; otherwise value holds it.
  virtual bool get(std::string_view key, std::string& value) const = 0;
  virtual void apply(const key_value_batch& writes) = 0;
  // f(key, value) for every key, in the store's order.
  virtual void for_each(const std::function<void(std::string_view key, std::string_view value)>& f) const = 0;
  // Removes every key.
  virtual void clear() = 0;
  // For progress reports: memory held (caches, memtables) and bytes on disk.
  virtual std::size_t memory_bytes() const = 0;
  virtual std::size_t disk_bytes() const = 0;
  // Writes a consistent copy of the store into directory (which must not exist yet). Incremental where
  // the backend allows: files shared with an earlier snapshot are hard links, not copies.
  virtual void snapshot_to(const std::string& directory) const = 0;
  // Replaces the store's contents by a snapshot_to() directory (left as it is).
  virtual void restore_from(const std::string& directory) = 0;
};

// Makes the store of one operator instance, keeping its working files in instance_directory (created
// when missing). The directory is scratch that the store owns: state survives in snapshot_to directories.
using key_value_store_factory =
    std::function<std::unique_ptr<key_value_store>(const state_backend_config& config, const std::string& instance_directory)>;

// Throws flow::error for an empty name, "memory", or a name already registered.
void register_state_backend(std::string name, key_value_store_factory factory);
// flow::error naming the registered backends when config.kind is unknown, or is "memory" (which has no
// key_value_store: the operators keep that state themselves).
std::unique_ptr<key_value_store> make_key_value_store(const state_backend_config& config,
                                                      const std::string& instance_directory);
// "memory" and every registered name, sorted.
std::vector<std::string> state_backends();

}  // namespace flow
