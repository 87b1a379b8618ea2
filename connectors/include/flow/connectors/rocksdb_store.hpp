// The "rocksdb" state backend: a key_value_store in a RocksDB database. RocksDB's headers stay inside the .cpp.
#pragma once

#include <memory>
#include <string>

#include "flow/state_backend.hpp"

namespace flow::connectors {

// A RocksDB database in directory, its working files: whatever is there is discarded (a working directory
// is scratch; state survives in snapshot_to directories). Memory: one block cache of
// config.block_cache_bytes (data, index and filter blocks) and at most two memtables of
// config.write_buffer_bytes. snapshot_to is a RocksDB checkpoint: the immutable SST files are hard links
// when directory and snapshot share a file system, so a snapshot writes what changed since the last one.
std::unique_ptr<key_value_store> make_rocksdb_store(const state_backend_config& config, const std::string& directory);

// Registers make_rocksdb_store as the "rocksdb" state backend (once; later calls do nothing). A program that
// runs queries has it registered already (the connectors' registry calls it); one that uses keyed states
// without the runtime calls it before make_key_value_store("rocksdb").
void register_state_backends();

}  // namespace flow::connectors
