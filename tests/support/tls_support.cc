#include "tests/support/tls_support.h"

#include <fstream>
#include <stdexcept>

#include <mqtt/async_client.h>

#include "tests/support/harness.h"

namespace edgeline::testing {
namespace {

void Run(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv, {});
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error("command failed (" + std::to_string(r.exit_code) + "): " + cmd + "\n" + r.output);
  }
}

// A self-signed CA certificate and its key.
void MakeCa(const std::string& dir, const std::string& name, const std::string& subject) {
  Run({"openssl",
       "req",
       "-x509",
       "-newkey",
       "ec",
       "-pkeyopt",
       "ec_paramgen_curve:prime256v1",
       "-nodes",
       "-keyout",
       dir + "/" + name + ".key",
       "-out",
       dir + "/" + name + ".pem",
       "-days",
       "3",
       "-subj",
       subject,
       "-addext",
       "basicConstraints=critical,CA:TRUE",
       "-addext",
       "keyUsage=critical,keyCertSign,cRLSign"});
}

// A leaf certificate for `san`, signed by the CA `ca`.
void MakeLeaf(const std::string& dir, const std::string& name, const std::string& ca, const std::string& san,
              const std::string& usage = "serverAuth") {
  const std::string ext = dir + "/" + name + ".ext";
  std::ofstream(ext) << "subjectAltName=" << san << "\n"
                     << "basicConstraints=CA:FALSE\n"
                     << "keyUsage=critical,digitalSignature,keyEncipherment\n"
                     << "extendedKeyUsage=" << usage << "\n";
  Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
       dir + "/" + name + ".key", "-out", dir + "/" + name + ".csr", "-subj", "/CN=edgeline test server"});
  Run({"openssl", "x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", dir + "/" + ca + ".pem", "-CAkey",
       dir + "/" + ca + ".key", "-CAcreateserial", "-out", dir + "/" + name + ".pem", "-days", "2", "-extfile", ext});
}

}  // namespace

TestPki MakeTestPki(const std::string& dir) {
  MakeCa(dir, "ca", "/CN=edgeline test CA");
  MakeCa(dir, "other-ca", "/CN=edgeline unrelated CA");
  MakeLeaf(dir, "server", "ca", "IP:127.0.0.1,DNS:localhost");
  MakeLeaf(dir, "wrong-host", "ca", "DNS:elsewhere.invalid");
  MakeLeaf(dir, "client", "ca", "DNS:edgeline-client", "clientAuth");
  TestPki pki;
  pki.ca_cert = dir + "/ca.pem";
  pki.other_ca_cert = dir + "/other-ca.pem";
  pki.server_cert = dir + "/server.pem";
  pki.server_key = dir + "/server.key";
  pki.wrong_host_cert = dir + "/wrong-host.pem";
  pki.wrong_host_key = dir + "/wrong-host.key";
  pki.client_cert = dir + "/client.pem";
  pki.client_key = dir + "/client.key";
  return pki;
}

std::string MakeMosquittoPasswordFile(const std::string& dir, const std::string& user, const std::string& password) {
  const std::string path = dir + "/mosquitto.passwd";
  Run({"mosquitto_passwd", "-b", "-c", path, user, password});
  return path;
}

struct SecurePublisher::Impl {
  std::unique_ptr<mqtt::async_client> client;
};

SecurePublisher::SecurePublisher(const std::string& url, const std::string& client_id, const MqttClientAuth& auth)
    : impl_(std::make_unique<Impl>()) {
  impl_->client = std::make_unique<mqtt::async_client>(url, client_id);
  mqtt::connect_options opts;
  opts.set_clean_session(true);
  opts.set_max_inflight(100);
  if (!auth.username.empty()) {
    opts.set_user_name(auth.username);
    opts.set_password(auth.password);
  }
  if (!auth.ca_file.empty()) {
    mqtt::ssl_options ssl;
    ssl.set_trust_store(auth.ca_file);
    if (!auth.cert_file.empty()) ssl.set_key_store(auth.cert_file);
    if (!auth.key_file.empty()) ssl.set_private_key(auth.key_file);
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(true);
    opts.set_ssl(ssl);
  }
  impl_->client->connect(opts)->wait();
}

SecurePublisher::~SecurePublisher() {
  try {
    impl_->client->disconnect()->wait();
  } catch (...) {
  }
}

void SecurePublisher::PublishAll(const std::vector<std::pair<std::string, std::string>>& messages) {
  std::vector<mqtt::delivery_token_ptr> window;
  for (const auto& [topic, payload] : messages) {
    window.push_back(impl_->client->publish(topic, payload.data(), payload.size(), 1, false));
    if (window.size() >= 50) {
      for (auto& t : window) t->wait();
      window.clear();
    }
  }
  for (auto& t : window) t->wait();
}

}  // namespace edgeline::testing
