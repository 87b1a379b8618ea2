// The RocksDB key_value_store.
#include "flow/connectors/rocksdb_store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <mutex>
#include <system_error>

#include "flow/connectors/durable_file.hpp"
#include "flow/types.hpp"

namespace flow::connectors {

namespace {

namespace fs = std::filesystem;

// A WriteBatch's layout: a 12-byte header, then per record a type byte and the key's and value's lengths
// (varint32, at most 5 bytes each) before their bytes.
constexpr std::size_t write_batch_header_bytes = 12, write_record_overhead_bytes = 11;

class rocksdb_store final : public key_value_store {
 public:
  rocksdb_store(const state_backend_config& config, std::string directory)
      : directory_(std::move(directory)), config_(config), cache_(rocksdb::NewLRUCache(config.block_cache_bytes)) {
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache_;
    // Index and filter blocks stay with their table readers (about 1.3 bytes per key), outside the cache:
    // a file's filter block is larger than a cache shard, so in the cache every get of a new key re-read it.
    table.cache_index_and_filter_blocks = false;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // a get of a new key rarely reads a block
    options_.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    options_.create_if_missing = true;
    options_.write_buffer_size = config.write_buffer_bytes;
    options_.max_write_buffer_number = 2;
    // The checkpoint, not the working directory, is what survives a crash: no write-ahead log here, and no
    // flush of the memtables at close (it would write files the next open discards, and allocate while
    // the store may be closing because memory ran out).
    write_options_.disableWAL = true;
    options_.avoid_flush_during_shutdown = true;
    read_all_.fill_cache = false;  // a full scan would evict the keys the epochs use
    out_of_memory_ = out_of_memory_message("use it");
    discard_files();
    open();
  }

  // A poisoned database is leaked on purpose: after a failed allocation RocksDB may count background work
  // that never started or never ends, and closing it then waits for that work forever (DBImpl::CloseHelper).
  ~rocksdb_store() override {
    if (poisoned_) (void)db_.release();
  }

  bool get(std::string_view key, std::string& value) const override {
    rocksdb::Status status;
    guarded("read a key",
            [&] { status = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value); });
    if (status.IsNotFound()) return false;
    check(status, "read a key");
    return true;
  }

  void apply(const key_value_batch& writes) override {
    if (writes.empty()) return;
    // The batch's bytes are reserved up front: RocksDB aborts the process (an assertion in LocalSavePoint)
    // when an allocation fails inside WriteBatch::Put, but a failure here is an exception like any other.
    std::size_t bytes = write_batch_header_bytes;
    for (const auto& w : writes.writes()) bytes += write_record_overhead_bytes + w.key.size() + (w.value ? w.value->size() : 0);
    const std::string what = "write " + std::to_string(writes.size()) + " keys";
    guarded(what, [&] {
      rocksdb::WriteBatch batch(bytes);
      for (const auto& w : writes.writes()) {
        if (w.value) check(batch.Put(w.key, *w.value), "batch a write");
        else check(batch.Delete(w.key), "batch a removal");
      }
      check(db_->Write(write_options_, &batch), what);
    });
  }

  void for_each(const std::function<void(std::string_view key, std::string_view value)>& f) const override {
    guarded("read the keys", [&] {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_all_));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        const rocksdb::Slice key = it->key(), value = it->value();
        f(std::string_view(key.data(), key.size()), std::string_view(value.data(), value.size()));
      }
      check(it->status(), "read the keys");
    });
  }

  void clear() override {
    refuse_if_poisoned();
    db_.reset();
    discard_files();
    open();
  }

  std::size_t memory_bytes() const override {
    return property("rocksdb.cur-size-all-mem-tables") + property("rocksdb.estimate-table-readers-mem") +
           cache_->GetUsage();
  }

  std::size_t disk_bytes() const override { return property("rocksdb.total-sst-files-size"); }

  void snapshot_to(const std::string& directory) const override {
    guarded("snapshot to '" + directory + "'", [&] {
      rocksdb::Checkpoint* raw = nullptr;
      check(rocksdb::Checkpoint::Create(db_.get(), &raw), "start a snapshot");
      const std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
      check(checkpoint->CreateCheckpoint(directory), "snapshot to '" + directory + "' (it must not exist yet)");
    });
  }

  // SST files never change: they are hard-linked (copied across file systems); the rest (MANIFEST,
  // CURRENT, OPTIONS), which RocksDB rewrites, is copied.
  void restore_from(const std::string& directory) override {
    if (!fs::is_directory(directory) || !fs::exists(fs::path(directory) / "CURRENT"))
      throw error("RocksDB state store: cannot restore from '" + directory +
                  "': it is not a snapshot (no CURRENT file); give a directory snapshot_to wrote");
    refuse_if_poisoned();
    db_.reset();
    discard_files();
    for (const auto& entry : fs::directory_iterator(directory)) {
      const fs::path target = fs::path(directory_) / entry.path().filename();
      std::error_code failed;
      if (entry.path().extension() == ".sst") fs::create_hard_link(entry.path(), target, failed);
      if (entry.path().extension() != ".sst" || failed) {
        failed.clear();
        fs::copy_file(entry.path(), target, failed);
      }
      if (failed)
        throw error("RocksDB state store: cannot restore '" + entry.path().string() + "' into '" + directory_ +
                    "': " + failed.message() + "; check that the directory is writable and has space");
    }
    open();
  }

 private:
  void open() {
    rocksdb::DB* raw = nullptr;
    guarded("open the database", [&] { check(rocksdb::DB::Open(options_, directory_, &raw), "open the database"); });
    db_.reset(raw);
  }

  // Runs a call into RocksDB. A C++ exception out of it (std::bad_alloc, or std::system_error when a
  // background thread cannot start) or a status reporting a memory limit means the process ran out of
  // memory inside RocksDB, which may have left the database half-updated: the store is poisoned, and this
  // and every later call fail with the same error.
  template <class Call>
  void guarded(const std::string& what, Call&& call) const {
    refuse_if_poisoned();
    try {
      call();
    } catch (const error&) {
      throw;
    } catch (const std::exception& e) {
      poison(what, e.what());
    }
  }

  void refuse_if_poisoned() const {
    if (poisoned_) throw error(out_of_memory_);
  }

  [[noreturn]] void poison(const std::string& what, const std::string& reason) const {
    poisoned_ = true;
    try {
      out_of_memory_ = out_of_memory_message(what + " (" + reason + ")");
    } catch (const std::bad_alloc&) {
      // No memory left for the details: the message composed when the store opened says the rest.
    }
    throw error(out_of_memory_);
  }

  std::string out_of_memory_message(const std::string& attempt) const {
    return "RocksDB state store in '" + directory_ + "': out of memory while trying to " + attempt +
           "; the state is lost for this run and the query fails (a checkpoint restores it). Raise the process's "
           "memory limit (ulimit -v, the container's limit) or lower the store's memory: "
           "state_backend_config::block_cache_bytes (now " +
           std::to_string(config_.block_cache_bytes >> 20) + " MiB) and write_buffer_bytes (now " +
           std::to_string(config_.write_buffer_bytes >> 20) + " MiB, two memtables per instance)";
  }

  void discard_files() {
    std::error_code failed;
    fs::remove_all(directory_, failed);
    if (failed)
      throw error("RocksDB state store: cannot clear its working directory '" + directory_ + "': " + failed.message());
    create_directories("RocksDB state store", directory_);
  }

  std::size_t property(const char* name) const {
    std::uint64_t v = 0;
    return db_->GetIntProperty(name, &v) ? static_cast<std::size_t>(v) : 0;
  }

  void check(const rocksdb::Status& status, const std::string& what) const {
    if (status.ok()) return;
    if (status.IsMemoryLimit()) poison(what, status.ToString());
    throw error("RocksDB state store in '" + directory_ + "': cannot " + what + ": " + status.ToString() +
                "; check that the directory is writable and has space");
  }

  std::string directory_;
  state_backend_config config_;
  std::shared_ptr<rocksdb::Cache> cache_;
  rocksdb::Options options_;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_all_;
  std::unique_ptr<rocksdb::DB> db_;
  mutable bool poisoned_ = false;
  mutable std::string out_of_memory_;
};

}  // namespace

std::unique_ptr<key_value_store> make_rocksdb_store(const state_backend_config& config, const std::string& directory) {
  if (directory.empty()) throw error("RocksDB state store: no working directory given");
  return std::make_unique<rocksdb_store>(config, directory);
}

void register_state_backends() {
  static std::once_flag registered;
  std::call_once(registered, [] { register_state_backend("rocksdb", make_rocksdb_store); });
}

}  // namespace flow::connectors
