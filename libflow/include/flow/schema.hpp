// A schema: ordered, named, typed, nullable fields.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/types.hpp"

namespace flow {

struct field {
  std::string name;
  type_id type = type_id::string;
  bool nullable = true;
  friend bool operator==(const field&, const field&) = default;
};

class schema {
 public:
  schema() = default;
  explicit schema(std::vector<field> fields) : fields_(std::move(fields)) {}

  const std::vector<field>& fields() const { return fields_; }
  std::size_t size() const { return fields_.size(); }
  const field& operator[](std::size_t i) const { return fields_[i]; }
  std::optional<std::size_t> find(std::string_view name) const;
  // Like find, but throws flow::error naming the available columns.
  std::size_t index_of(std::string_view name) const;
  std::vector<std::string> names() const;
  // "CustomerID: float64, InvoiceDate: timestamp" (Spark's printSchema in one line).
  std::string to_string() const;
  // Spark's printSchema() tree.
  std::string tree_string() const;

  friend bool operator==(const schema&, const schema&) = default;

 private:
  std::vector<field> fields_;
};

using schema_ptr = std::shared_ptr<const schema>;

inline schema_ptr make_schema(std::vector<field> fields) {
  return std::make_shared<const schema>(std::move(fields));
}

}  // namespace flow
