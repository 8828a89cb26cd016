#include "ingest/mqtt_ingest.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <utility>

#include "common/log.h"

namespace edgeline {
namespace {

// The packet identifier of a received message is in Paho C's MQTTAsync_message, which Paho C++
// 1.2's mqtt::message keeps private (its accessor exists only under UNIT_TESTS). An explicit
// template instantiation may name a private member (C++20 [temp.spec.general]/6): the friend
// defined by the instantiation below reads it without patching Paho.
const MQTTAsync_message& CStruct(const mqtt::message& message);
template <MQTTAsync_message mqtt::message::*Member>
struct MessageStructAccess {
  friend const MQTTAsync_message& CStruct(const mqtt::message& message) { return message.*Member; }
};
template struct MessageStructAccess<&mqtt::message::msg_>;

constexpr std::string_view kOnline = "online";
constexpr std::string_view kOffline = "offline";

std::string SessionClientId(const MqttConfig& config, size_t index) {
  if (config.connections <= 1) return config.client_id;
  return config.client_id + "-" + std::to_string(index);
}

// OpenSSL's reason for the last failed TLS handshake. Paho's own error says only "TCP/TLS connect
// failure"; its TLS error callback gets OpenSSL's line. Shared with the callback, which Paho
// keeps (and may call from its thread) as long as the client keeps the connect options.
struct TlsErrorSlot {
  std::mutex mu;
  std::string reason;
  std::string Take() {
    std::lock_guard lock(mu);
    return std::exchange(reason, std::string());
  }
};

// "<thread>:error:<code>:SSL routines:<function>:<reason>:<file>:<line>:" -> "<reason>".
std::string OpenSslReason(const std::string& line) {
  size_t start = 0;
  for (int field = 0; field < 5; ++field) {
    start = line.find(':', start);
    if (start == std::string::npos) return line;
    ++start;
  }
  const size_t end = line.find(':', start);
  return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Paho's messages for refused connections are bare codes ("MQTT error [5]: CONNACK return
// code"); an operator needs to know which setting to fix.
std::string DescribeConnectFailure(const mqtt::exception& e, bool tls, const std::string& tls_reason) {
  switch (e.get_return_code()) {  // MQTT 3.1.1 CONNACK return codes
    case 1: return "broker refused the connection: unacceptable protocol version (CONNACK 1)";
    case 2:
      return "broker refused the connection: client identifier rejected (CONNACK 2); "
             "check EDGELINE_MQTT_CLIENT_ID";
    case 3: return "broker refused the connection: server unavailable (CONNACK 3)";
    case 4:
      return "broker refused the connection: bad user name or password (CONNACK 4); "
             "check EDGELINE_MQTT_USERNAME and EDGELINE_MQTT_PASSWORD";
    case 5:
      return "broker refused the connection: not authorized (CONNACK 5); "
             "check EDGELINE_MQTT_USERNAME and EDGELINE_MQTT_PASSWORD";
    default: break;
  }
  if (!tls_reason.empty()) {
    return "TLS handshake failed: " + tls_reason +
           " (check EDGELINE_MQTT_CA_FILE, EDGELINE_MQTT_CERT_FILE, EDGELINE_MQTT_KEY_FILE)";
  }
  if (tls && e.get_return_code() == -1) {
    // No OpenSSL reason: Paho 1.3 checks the host name after the handshake without giving one,
    // and a broker refusing our client certificate just closes the connection.
    return std::string(e.what()) +
           " (TLS: is the broker reachable, does its certificate name the host in EDGELINE_MQTT_URL, "
           "does it require a client certificate (EDGELINE_MQTT_CERT_FILE, EDGELINE_MQTT_KEY_FILE)?)";
  }
  return e.what();
}

bool IsTlsUrl(const std::string& url) {
  return url.rfind("ssl://", 0) == 0 || url.rfind("mqtts://", 0) == 0 || url.rfind("wss://", 0) == 0;
}

mqtt::connect_options BuildConnectOptions(const MqttConfig& config, bool with_will,
                                          const std::shared_ptr<TlsErrorSlot>& tls_error) {
  mqtt::connect_options opts;
  opts.set_clean_session(false);  // persistent session: the broker holds QoS 1 messages while we are down
  opts.set_keep_alive_interval(std::chrono::seconds(std::max<int64_t>(1, config.keepalive_ns / 1'000'000'000)));
  opts.set_connect_timeout(std::chrono::seconds(10));
  opts.set_automatic_reconnect(std::chrono::seconds(std::max<int64_t>(1, config.reconnect_min_ns / 1'000'000'000)),
                               std::chrono::seconds(std::max<int64_t>(1, config.reconnect_max_ns / 1'000'000'000)));
  if (!config.username.empty()) {
    opts.set_user_name(config.username);
    opts.set_password(config.password);
  }
  if (with_will) {
    opts.set_will(mqtt::will_options(config.status_topic, std::string(kOffline), 1, true));
  }
  if (IsTlsUrl(config.url)) {
    mqtt::ssl_options ssl;
    if (!config.ca_file.empty()) ssl.set_trust_store(config.ca_file);
    if (!config.cert_file.empty()) ssl.set_key_store(config.cert_file);
    if (!config.key_file.empty()) ssl.set_private_key(config.key_file);
    ssl.set_enable_server_cert_auth(!config.tls_skip_verify);
    ssl.set_verify(!config.tls_skip_verify);
    ssl.set_error_handler([tls_error](const std::string& line) {
      std::lock_guard lock(tls_error->mu);
      tls_error->reason = OpenSslReason(line);
    });
    opts.set_ssl(ssl);
  }
  return opts;
}

}  // namespace

std::vector<std::string> MqttIngest::SubscriptionFilters(const MqttConfig& config) {
  std::vector<std::string> filters;
  for (const auto& topic : config.topics) {
    if (config.connections > 1 && topic.rfind("$share/", 0) != 0) {
      filters.push_back("$share/" + config.share_group + "/" + topic);
    } else {
      filters.push_back(topic);
    }
  }
  return filters;
}

std::string MqttIngest::SessionName(const MqttConfig& config, size_t index) {
  // Without any user:password@ of the URL: the name is stored in the queue file and shown.
  std::string url = config.url;
  const size_t scheme = url.find("://");
  const size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t at = url.find('@', host);
  if (at != std::string::npos && url.find('/', host) > at) url.erase(host, at + 1 - host);
  return SessionClientId(config, index) + " " + url;
}

MqttIngest::MqttIngest(MqttConfig config, MessageHandler handler, MqttSessionStore* store)
    : config_(std::move(config)), handler_(std::move(handler)), store_(store) {
  if (config_.status_topic.empty()) config_.status_topic = "edgeline/" + config_.client_id + "/status";
}

MqttIngest::~MqttIngest() { Stop(); }

std::string MqttIngest::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void MqttIngest::SetLastError(std::string error) {
  std::lock_guard lock(mu_);
  last_error_ = std::move(error);
}

void MqttIngest::Start() {
  const size_t n = static_cast<size_t>(std::max(1, config_.connections));
  for (size_t i = 0; i < n; ++i) {
    try {
      session_names_.push_back(SessionName(config_, i));
      connection_ids_.push_back(std::make_unique<std::atomic<int64_t>>(0));
      PahoPersistence* persistence = nullptr;
      if (store_ != nullptr) {
        persistence_.push_back(std::make_unique<PahoPersistence>(store_, session_names_.back()));
        persistence = persistence_.back().get();
      }
      auto client = std::make_unique<mqtt::async_client>(config_.url, SessionClientId(config_, i), persistence);
      session_up_.push_back(std::make_unique<std::atomic<bool>>(false));
      client->set_message_callback([this, i](mqtt::const_message_ptr msg) {
        const std::string& topic = msg->get_topic();
        MqttMessage message;
        message.topic = topic;
        message.payload = msg->get_payload_ref().str();
        message.qos = msg->get_qos();
        message.packet_id = msg->get_qos() > 0 ? CStruct(*msg).msgid : 0;
        message.dup = msg->is_duplicate();
        message.retained = msg->is_retained();
        message.session = session_names_[i];
        message.connection = connection_ids_[i]->load();
        Status st = handler_(message);
        if (!st.ok()) {
          // Paho sends the PUBACK when this callback returns, and offers no way to withhold it.
          // The only way not to acknowledge a message we could not store is to never return:
          // end the process as a crash would. The broker keeps and redelivers the message.
          LOG_ERROR("mqtt") << "message on " << topic << " could not be stored (" << st.ToString()
                            << "); exiting without acknowledging it";
          std::_Exit(1);
        }
      });
      client->set_connected_handler([this, i](const std::string&) { OnConnected(i); });
      client->set_connection_lost_handler([this, i](const std::string& cause) {
        if (session_up_[i]->exchange(false)) connected_--;
        SetLastError("connection lost" + (cause.empty() ? std::string() : ": " + cause));
        LOG_WARN("mqtt") << "session " << i << " lost its connection; reconnecting";
      });
      clients_.push_back(std::move(client));
    } catch (const mqtt::exception& e) {
      SetLastError(std::string("cannot create MQTT client: ") + e.what());
      LOG_ERROR("mqtt") << "cannot create MQTT client " << i << ": " << e.what();
      return;
    }
  }
  connect_thread_ = std::thread([this] { ConnectLoop(); });
}

void MqttIngest::OnConnected(size_t index) {
  // Runs on Paho's receive thread before any message of this connection is delivered.
  static std::atomic<int64_t> connections{0};
  connection_ids_[index]->store(std::chrono::system_clock::now().time_since_epoch().count() + ++connections);
  if (!session_up_[index]->exchange(true)) connected_++;
  auto& client = *clients_[index];
  LOG_INFO("mqtt") << "session " << index << " connected to " << config_.url;
  try {
    for (const auto& filter : SubscriptionFilters(config_)) {
      // Not waited for: this runs on Paho's callback thread, where waiting would deadlock.
      client.subscribe(filter, config_.qos);
    }
    if (index == 0) {
      client.publish(config_.status_topic, std::string(kOnline).data(), kOnline.size(), 1, true);
    }
  } catch (const mqtt::exception& e) {
    SetLastError(std::string("subscribe failed: ") + e.what());
    LOG_ERROR("mqtt") << "subscribe failed: " << e.what();
  }
}

void MqttIngest::ConnectLoop() {
  // Paho reconnects by itself only after a first successful connect; until then we retry.
  for (size_t i = 0; i < clients_.size(); ++i) {
    int64_t delay_ns = config_.reconnect_min_ns;
    auto tls_error = std::make_shared<TlsErrorSlot>();
    while (!stopping_) {
      try {
        auto opts = BuildConnectOptions(config_, i == 0, tls_error);
        clients_[i]->connect(opts)->wait();
        break;
      } catch (const mqtt::exception& e) {
        std::string error = "connect to " + config_.url +
                            " failed: " + DescribeConnectFailure(e, IsTlsUrl(config_.url), tls_error->Take());
        SetLastError(error);
        LOG_WARN("mqtt") << "session " << i << ": " << error << "; retrying";
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::nanoseconds(delay_ns), [this] { return stopping_.load(); });
      delay_ns = std::min(delay_ns * 2, config_.reconnect_max_ns);
    }
  }
}

Status MqttIngest::Publish(const std::string& topic, const std::string& payload, int qos, bool retained) {
  if (clients_.empty() || !session_up_[0]->load() || stopping_) {
    return Status::Unavailable("MQTT session is not connected");
  }
  try {
    auto token = clients_[0]->publish(topic, payload.data(), payload.size(), qos, retained);
    if (!token->wait_for(std::chrono::seconds(5))) {
      return Status::Unavailable("MQTT publish to " + topic + " was not acknowledged within 5s");
    }
    return Status::Ok();
  } catch (const mqtt::exception& e) {
    return Status::Unavailable(std::string("MQTT publish to ") + topic + " failed: " + e.what());
  }
}

void MqttIngest::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_.exchange(true)) return;
  }
  cv_.notify_all();
  if (connect_thread_.joinable()) connect_thread_.join();
  for (size_t i = 0; i < clients_.size(); ++i) {
    auto& client = *clients_[i];
    // Our own flag, not client.is_connected(): Paho's call takes the lock its receive thread
    // holds while a message callback runs, so it would wait for a blocked commit.
    const bool up = session_up_[i]->load();
    try {
      if (up && i == 0) {
        client.publish(config_.status_topic, std::string(kOffline).data(), kOffline.size(), 1, true)
            ->wait_for(std::chrono::seconds(2));
      }
      // Always: even a session that is down must stop Paho's automatic reconnect.
      client.disconnect(std::chrono::seconds(2))->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception& e) {
      if (up) LOG_WARN("mqtt") << "disconnect of session " << i << ": " << e.what();
    }
    session_up_[i]->store(false);
  }
  connected_ = 0;
}

}  // namespace edgeline
