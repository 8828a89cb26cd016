#include "ingest/paho_persistence.h"

#include <mqtt/exception.h>

#include "common/log.h"

namespace edgeline {
namespace {

[[noreturn]] void Fail(const std::string& what, const Status& status) {
  LOG_ERROR("mqtt") << "client persistence: " << what << ": " << status.ToString();
  throw mqtt::persistence_exception();
}

}  // namespace

PahoPersistence::PahoPersistence(MqttSessionStore* store, std::string session)
    : store_(store), session_(std::move(session)) {}

void PahoPersistence::open(const mqtt::string&, const mqtt::string&) {}

void PahoPersistence::close() {}

void PahoPersistence::clear() {
  Status st = store_->ClearMqttState(session_);
  if (!st.ok()) Fail("clear", st);
}

bool PahoPersistence::contains_key(const mqtt::string& key) {
  Result<std::optional<std::string>> value = store_->GetMqttState(session_, key);
  if (!value.ok()) Fail("read " + key, value.status());
  return value->has_value();
}

mqtt::string_collection PahoPersistence::keys() const {
  Result<std::vector<std::string>> keys = store_->MqttStateKeys(session_);
  if (!keys.ok()) Fail("list keys", keys.status());
  mqtt::string_collection out;
  for (std::string& key : *keys) out.push_back(std::move(key));
  return out;
}

void PahoPersistence::put(const mqtt::string& key, const std::vector<mqtt::string_view>& bufs) {
  std::string value;
  size_t size = 0;
  for (const auto& b : bufs) size += b.size();
  value.reserve(size);
  for (const auto& b : bufs) value.append(b.data(), b.size());
  Status st = store_->PutMqttState(session_, key, value);
  if (!st.ok()) Fail("write " + key, st);
}

mqtt::string PahoPersistence::get(const mqtt::string& key) const {
  Result<std::optional<std::string>> value = store_->GetMqttState(session_, key);
  if (!value.ok()) Fail("read " + key, value.status());
  if (!value->has_value()) throw mqtt::persistence_exception();
  return std::move(**value);
}

void PahoPersistence::remove(const mqtt::string& key) {
  Status st = store_->RemoveMqttState(session_, key);
  if (!st.ok()) Fail("delete " + key, st);
}

}  // namespace edgeline
