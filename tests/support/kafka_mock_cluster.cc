// kafka_mock_cluster: librdkafka's mock cluster (rdkafka_mock.h) with 3 brokers in its own
// process, for integration tests. Prints "bootstrap <host:port,...>" on stdout first, then reads
// one command a line from stdin and answers each with "ok <n> <command>" or "error <n> <why>"
// (n counts commands from 1, so a test can wait for its own answer):
//   down | up                        all brokers down (connections dropped and refused) / up
//   errors <count> <ErrorName>       the next <count> Produce requests fail with ErrorName
//                                    (rd_kafka_err2name without the prefix, e.g. NOT_ENOUGH_REPLICAS)
//   topic <name> <partitions>        create a topic (replication factor 3)
//   quit                             exit (so does end of input)
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kBrokers = 3;
constexpr int16_t kProduceApiKey = 0;  // Kafka protocol ApiKey of Produce

std::optional<rd_kafka_resp_err_t> ErrorByName(const std::string& name) {
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr && name == descs[i].name) return descs[i].code;
  }
  return std::nullopt;
}

std::string Execute(rd_kafka_mock_cluster_t* cluster, const std::string& line) {
  std::istringstream in(line);
  std::string command;
  in >> command;
  if (command == "down" || command == "up") {
    for (int32_t id = 1; id <= kBrokers; ++id) {
      rd_kafka_resp_err_t err =
          command == "down" ? rd_kafka_mock_broker_set_down(cluster, id) : rd_kafka_mock_broker_set_up(cluster, id);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return std::string("broker: ") + rd_kafka_err2name(err);
    }
    return "";
  }
  if (command == "errors") {
    size_t count = 0;
    std::string name;
    if (!(in >> count >> name)) return "usage: errors <count> <ErrorName>";
    std::optional<rd_kafka_resp_err_t> err = ErrorByName(name);
    if (!err) return "unknown error name " + name;
    std::vector<rd_kafka_resp_err_t> errors(count, *err);
    rd_kafka_mock_push_request_errors_array(cluster, kProduceApiKey, errors.size(), errors.data());
    return "";
  }
  if (command == "topic") {
    std::string name;
    int partitions = 0;
    if (!(in >> name >> partitions) || partitions < 1) return "usage: topic <name> <partitions>";
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, name.c_str(), partitions, kBrokers);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return std::string("topic: ") + rd_kafka_err2name(err);
    return "";
  }
  return "unknown command " + command;
}

}  // namespace

int main() {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the cluster; keep its own chatter out of the test log.
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, kBrokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  std::cout << "bootstrap " << rd_kafka_mock_cluster_bootstraps(cluster) << std::endl;

  std::string line;
  int n = 0;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    ++n;
    if (line == "quit") {
      std::cout << "ok " << n << " quit" << std::endl;
      break;
    }
    std::string error = Execute(cluster, line);
    if (error.empty()) {
      std::cout << "ok " << n << " " << line << std::endl;
    } else {
      std::cout << "error " << n << " " << error << std::endl;
    }
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
