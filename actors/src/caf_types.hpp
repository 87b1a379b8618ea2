// CAF 0.17 serialization of libflow's message payloads. Include only from actors/*.cpp: it pulls in CAF.
// Register on every node: cfg.add_message_type<flow::batch>("flow::batch") and
// cfg.add_message_type<flow::raw_chunk>("flow::raw_chunk").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/save_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>

#include "flow/batch.hpp"
#include "flow/batch_pieces.hpp"
#include "flow/formats.hpp"

namespace flow {

// A batch travels as its flow::encode bytes (a byte sequence: its size, then the bytes), so it crosses
// nodes in libflow's own validated format; an invalid batch (no schema: an empty state copy) as no bytes.
// The bytes go straight into the serializer's buffer (encode_to: a column's arrays in one piece each), and
// a binary deserializer's (CAF's for messages from other nodes) are decoded where they lie: no copy of
// the whole encoding on either side.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch& x) {
  if constexpr (Inspector::reads_state) {
    if constexpr (std::is_base_of_v<caf::serializer, Inspector>) {
      auto save = caf::meta::save_callback([&]() -> caf::error {
        std::size_t size = x.valid() ? encoded_size(x) : 0;
        if (auto err = f.begin_sequence(size)) return err;
        caf::error failed;
        if (size > 0)
          encode_to(x, [&](const void* piece, std::size_t n) {
            if (!failed) failed = f.apply_raw(n, const_cast<void*>(piece));
          });
        if (failed) return failed;
        return f.end_sequence();
      });
      return f(caf::meta::type_name("flow::batch"), save);
    } else {
      // Printing inspectors (deep_to_string, logging) get a summary instead of the bytes.
      std::string summary = x.valid() ? std::to_string(x.num_rows()) + " rows of (" + x.schema().to_string() + ")"
                                      : std::string("no batch");
      return f(caf::meta::type_name("flow::batch"), summary);
    }
  } else {
    auto load = caf::meta::load_callback([&]() -> caf::error {
      std::size_t size = 0;
      if (auto err = f.begin_sequence(size)) return err;
      try {
        if (size == 0) {
          x = batch{};
        } else if (auto* in_place = dynamic_cast<caf::binary_deserializer*>(&f); in_place && in_place->remaining() >= size) {
          x = decode_batch(reinterpret_cast<const std::uint8_t*>(in_place->remainder().data()), size);
          in_place->skip(size);
        } else {
          std::vector<std::uint8_t> bytes(size);
          if (auto err = f.apply_raw(size, bytes.data())) return err;
          x = decode_batch(bytes);
        }
      } catch (const error& e) {
        return caf::make_error(caf::sec::invalid_argument, std::string(e.what()));
      }
      return f.end_sequence();
    });
    return f(caf::meta::type_name("flow::batch"), load);
  }
}

// A chunk travels as just its visible bytes; the receiver owns a fresh buffer of exactly those.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, raw_chunk& x) {
  if constexpr (Inspector::reads_state) {
    std::string contents = x.buffer ? std::string(x.bytes()) : std::string();
    std::uint64_t file_offset = x.file_offset ? *x.file_offset : x.begin;
    return f(caf::meta::type_name("flow::raw_chunk"), contents, x.origin, x.first_line, file_offset,
             x.framed_messages);
  } else {
    std::string contents;
    std::uint64_t file_offset = 0;
    auto load = caf::meta::load_callback([&]() -> caf::error {
      x.begin = 0;
      x.end = contents.size();
      x.file_offset = file_offset;
      x.buffer = std::make_shared<const std::string>(std::move(contents));
      return caf::none;
    });
    return f(caf::meta::type_name("flow::raw_chunk"), contents, x.origin, x.first_line, file_offset,
             x.framed_messages, load);
  }
}

}  // namespace flow
