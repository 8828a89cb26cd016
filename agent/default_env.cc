#include "agent/env.h"

namespace edgeline {
namespace {

class DefaultEnvImpl final : public Env {
 public:
  const Clock* clock() override { return &SystemClock::Instance(); }
  std::unique_ptr<HttpTransport> NewHttpTransport(const HttpTransportOptions& options) override {
    return NewCurlTransport(options);
  }
  Result<std::unique_ptr<Producer>> NewKafkaProducer(const KafkaConfig& config) override {
    return NewRdKafkaProducer(config);
  }
};

}  // namespace

Env* DefaultEnv() {
  static DefaultEnvImpl env;
  return &env;
}

}  // namespace edgeline
