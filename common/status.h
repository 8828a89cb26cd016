// Status and Result<T>: the one error type that crosses edgeline's interfaces.
// A Status is cheap when OK (no allocation). Library exceptions (Paho, nlohmann) are
// caught at the adapter that calls the library and converted here; nothing throws across
// our headers. Value types: safe to copy between threads, not to share mutably.
#pragma once

#include <cassert>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace edgeline {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // caller's input is wrong; retrying will not help
  kNotFound,
  kIoError,             // disk or OS failure; usually retriable
  kCorruption,          // on-disk data is damaged
  kUnavailable,         // peer down, connection refused, timeout: retriable
  kResourceExhausted,   // queue full (backpressure), 429: retriable later
  kFailedPrecondition,  // state does not allow the operation
  kPermissionDenied,    // 401/403, file permissions
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(code == StatusCode::kOk ? nullptr : std::make_shared<std::string>(std::move(message))) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }
  // True when the same operation may succeed later without anyone changing input or config.
  bool retriable() const {
    return code_ == StatusCode::kIoError || code_ == StatusCode::kUnavailable ||
           code_ == StatusCode::kResourceExhausted;
  }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::shared_ptr<const std::string> message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) std::abort();                     // a Result holding "OK" without a value is a bug
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace edgeline

#define EDGELINE_CONCAT_INNER(a, b) a##b
#define EDGELINE_CONCAT(a, b) EDGELINE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)        \
  do {                               \
    ::edgeline::Status _st = (expr); \
    if (!_st.ok()) return _st;       \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(EDGELINE_CONCAT(_result_, __LINE__), lhs, expr)
