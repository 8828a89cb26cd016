// TLS test support for the security tests: a throw-away PKI made with the `openssl` CLI at run
// time (a CA, a server certificate for 127.0.0.1/localhost, an unrelated second CA), a
// mosquitto password file, and a Paho publisher that connects with TLS and credentials.
// Owned by the security tests; failures throw std::runtime_error (test code, like harness.h).
// Not thread-safe: one test thread owns each object.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace edgeline::testing {

struct TestPki {
  std::string ca_cert;      // PEM of the CA that signed the server certificate
  std::string server_cert;  // SAN IP:127.0.0.1, DNS:localhost; serverAuth
  std::string server_key;
  std::string other_ca_cert;    // an unrelated CA: verifying the server against it must fail
  std::string wrong_host_cert;  // signed by ca_cert but for DNS:elsewhere.invalid only
  std::string wrong_host_key;
  std::string client_cert;  // signed by ca_cert, clientAuth: for mutual TLS
  std::string client_key;
};

// Writes the files into `dir` (which must exist). Takes well under a second (EC P-256 keys).
TestPki MakeTestPki(const std::string& dir);

// `mosquitto_passwd -b -c`: a password file with one user; returns its path.
std::string MakeMosquittoPasswordFile(const std::string& dir, const std::string& user, const std::string& password);

struct MqttClientAuth {
  std::string ca_file;  // empty: plain TCP
  std::string username;
  std::string password;
  std::string cert_file;  // client certificate and key for mutual TLS (optional)
  std::string key_file;
};

// Like harness.h's Publisher (QoS 1, waits for every PUBACK), with TLS and credentials.
class SecurePublisher {
 public:
  SecurePublisher(const std::string& url, const std::string& client_id, const MqttClientAuth& auth);
  ~SecurePublisher();
  void PublishAll(const std::vector<std::pair<std::string, std::string>>& messages);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeline::testing
