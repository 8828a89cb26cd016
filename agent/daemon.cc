#include "agent/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <memory>
#include <stop_token>
#include <thread>
#include <vector>

#include "agent/alarm_publisher.h"
#include "agent/group_committer.h"
#include "agent/http_api.h"
#include "agent/mapping.h"
#include "agent/mqtt_ingest.h"
#include "common/log.h"
#include "common/wakeup.h"
#include "downsample/downsample_task.h"
#include "kafka/kafka_mirror.h"
#include "kafka/producer.h"
#include "kafka/record_format.h"
#include "replication/http_transport.h"
#include "replication/influx_writer.h"
#include "replication/replicator.h"
#include "storage/queue.h"

namespace edgeline {
namespace {

// systemd's notify protocol (Type=notify, sd_notify(3)): one datagram to $NOTIFY_SOCKET. Spoken
// directly rather than through libsystemd so every build works under the shipped unit; a no-op
// outside systemd.
void NotifySystemd(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@') || std::strlen(path) >= sizeof(sockaddr_un::sun_path)) {
    return;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

constexpr int64_t kHeartbeatNs = 1'000'000'000;
constexpr int64_t kLimitsEveryNs = 10'000'000'000;
constexpr int64_t kShutdownDeadlineNs = 15'000'000'000;
// EX_TEMPFAIL; the systemd unit restarts the agent (Restart=always).
constexpr int kExitQueueCorrupt = 75;

// Sleeps up to `ns`, waking early when a stop is requested. Returns true if it was.
bool SleepUnlessStopped(std::stop_token stop, int64_t ns) {
  Wakeup().Wait(stop, ns, /*interruptible=*/false);
  return stop.stop_requested();
}

GroupCommitterOptions CommitterOptions(const Config& config) {
  GroupCommitterOptions o;
  o.commit_interval_ns = config.queue.commit_interval_ns;
  o.commit_max_messages = config.queue.commit_max_messages;
  o.max_payload_bytes = config.mqtt.max_payload_bytes;
  return o;
}

bool Contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// One InfluxDB sink (one stream into one bucket/database) with everything it owns.
struct InfluxSink {
  std::unique_ptr<HttpTransport> transport;
  std::unique_ptr<InfluxWriter> writer;
  std::unique_ptr<Replicator> replicator;
};

Result<std::unique_ptr<InfluxSink>> MakeInfluxSink(const Config& config, const std::string& name,
                                                   std::string_view stream, InfluxTarget target,
                                                   Queue* queue, const Clock* clock) {
  auto sink = std::make_unique<InfluxSink>();
  HttpTransportOptions http;
  http.timeout_ns = config.influx.timeout_ns;
  http.connect_timeout_ns = config.influx.connect_timeout_ns;
  http.tls_skip_verify = config.influx.tls_skip_verify;
  http.ca_file = config.influx.ca_file;
  sink->transport = NewCurlTransport(http);
  sink->writer = std::make_unique<InfluxWriter>(config.influx, sink->transport.get(), clock, std::move(target));
  ReplicatorOptions options;
  options.batch_points = config.influx.batch_points;
  options.retry_min_ns = config.influx.retry_min_ns;
  options.retry_max_ns = config.influx.retry_max_ns;
  options.max_bytes_per_sec = config.influx.max_bytes_per_sec;
  options.newest_first = config.influx.replay_order == "newest-first";
  sink->replicator = std::make_unique<Replicator>(name, std::string(stream), queue, sink->writer.get(),
                                                  clock, options);
  RETURN_IF_ERROR(sink->replicator->Start());
  LOG_INFO("agent") << "sink " << name << ": stream " << stream << " -> InfluxDB "
                    << sink->writer->TargetDescription();
  return sink;
}

// Every consumer of the queue. All are registered before any thread starts: GC counts only the
// consumers registered in this run, so one registered late could find its batches collected.
struct Consumers {
  std::vector<std::unique_ptr<KafkaMirror>> kafka_mirrors;
  // After the mirrors, so it is destroyed first (records in flight report to them).
  std::unique_ptr<Producer> kafka_producer;
  std::unique_ptr<InfluxSink> influx_raw;
  std::unique_ptr<InfluxSink> influx_downsampled;
  std::unique_ptr<DownsampleTask> downsampler;
  std::unique_ptr<AlarmPublisher> alarms;
  std::vector<std::function<void()>> notify_raw;          // woken by each ingest commit
  std::vector<std::function<void()>> notify_downsampled;  // woken by each downsampler output
  std::vector<std::function<void()>> notify_all;
  std::vector<std::jthread> threads;

  void StopAll() {
    for (auto& t : threads) t.request_stop();
    for (auto& n : notify_all) n();
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
    // Records still in flight are dropped unreported; the mirrors' cursors did not pass them,
    // so the next run sends them again.
    kafka_producer.reset();
  }
};

Status RegisterConsumers(const Config& config, Queue* queue, const Clock* clock,
                         MessagePublisher* mqtt, Consumers* c) {
  if (config.influx.tls_skip_verify && config.influx.enabled) {
    LOG_WARN("influx") << "TLS certificate verification is OFF (EDGELINE_INFLUX_TLS_SKIP_VERIFY=true)";
  }
  if (config.influx.enabled && Contains(config.influx.streams, kRawStream)) {
    ASSIGN_OR_RETURN(c->influx_raw, MakeInfluxSink(config, "influx", kRawStream, {}, queue, clock));
    Replicator* r = c->influx_raw->replicator.get();
    c->notify_raw.push_back([r] { r->Notify(); });
  }
  if (config.downsample.enabled) {
    if (config.influx.enabled && Contains(config.influx.streams, kDownsampledStream)) {
      InfluxTarget target{config.downsample.bucket, config.downsample.retention_policy};
      ASSIGN_OR_RETURN(c->influx_downsampled, MakeInfluxSink(config, "influx-downsampled",
                                                             kDownsampledStream, target, queue, clock));
      Replicator* r = c->influx_downsampled->replicator.get();
      c->notify_downsampled.push_back([r] { r->Notify(); });
    }
    if (!config.downsample.alarm_topic.empty()) {
      c->alarms = std::make_unique<AlarmPublisher>(queue, mqtt, clock);
      RETURN_IF_ERROR(c->alarms->Start());
      AlarmPublisher* a = c->alarms.get();
      c->notify_downsampled.push_back([a] { a->Notify(); });
    }
    DownsampleTaskOptions task_options;
    const bool kafka_reads_it = config.kafka.enabled() && Contains(config.kafka.streams, kDownsampledStream);
    task_options.write_rows = c->influx_downsampled != nullptr || kafka_reads_it;
    if (!task_options.write_rows) {
      LOG_WARN("downsample") << "no sink reads the downsampled stream (EDGELINE_INFLUX_STREAMS, EDGELINE_KAFKA_STREAMS): "
                                "rows are not stored; alarms still work";
    }
    c->downsampler = std::make_unique<DownsampleTask>(config.downsample, queue, clock, task_options);
    RETURN_IF_ERROR(c->downsampler->Start());
    DownsampleTask* d = c->downsampler.get();
    auto downstream = c->notify_downsampled;
    d->SetOnOutput([downstream] {
      for (const auto& n : downstream) n();
    });
  }
  if (config.kafka.enabled()) {
    ASSIGN_OR_RETURN(c->kafka_producer, NewRdKafkaProducer(config.kafka));
    for (std::string_view stream : {kRawStream, kDownsampledStream}) {
      if (!Contains(config.kafka.streams, stream)) continue;
      if (stream == kDownsampledStream && !config.downsample.enabled) continue;
      if (stream == kRawStream && config.kafka.topic_map.empty()) {
        LOG_WARN("kafka") << "EDGELINE_KAFKA_TOPIC_MAP is empty: raw points are not mirrored";
        continue;
      }
      ASSIGN_OR_RETURN(TopicRouter router, TopicRouterForStream(stream, config.kafka, config.downsample.bucket));
      std::string name = "kafka-" + std::string(stream);
      auto mirror = std::make_unique<KafkaMirror>(name, std::string(stream), queue, c->kafka_producer.get(), clock,
                                                  std::move(router), KafkaMirrorOptionsFromConfig(config.kafka));
      RETURN_IF_ERROR(mirror->Start());
      LOG_INFO("agent") << "sink " << name << ": stream " << stream << " -> Kafka "
                        << c->kafka_producer->Description();
      KafkaMirror* m = mirror.get();
      (stream == kRawStream ? c->notify_raw : c->notify_downsampled).push_back([m] { m->Notify(); });
      c->kafka_mirrors.push_back(std::move(mirror));
    }
    if (c->downsampler) {
      auto downstream = c->notify_downsampled;
      c->downsampler->SetOnOutput([downstream] {
        for (const auto& n : downstream) n();
      });
    }
  }
  c->notify_all = c->notify_raw;
  c->notify_all.insert(c->notify_all.end(), c->notify_downsampled.begin(), c->notify_downsampled.end());
  if (c->notify_raw.empty() && !c->downsampler) {
    LOG_WARN("agent") << "no consumer of the raw stream (InfluxDB off or EDGELINE_INFLUX_STREAMS without raw, "
                         "no downsampling): data is queued until EDGELINE_QUEUE_MAX_AGE/MAX_BYTES drop it";
  }
  return Status::Ok();
}

void StartConsumers(Consumers* c) {
  for (InfluxSink* sink : {c->influx_raw.get(), c->influx_downsampled.get()}) {
    if (!sink) continue;
    Replicator* r = sink->replicator.get();
    c->threads.emplace_back([r](std::stop_token stop) { r->Run(stop); });
  }
  if (c->downsampler) {
    DownsampleTask* d = c->downsampler.get();
    c->threads.emplace_back([d](std::stop_token stop) { d->Run(stop); });
  }
  if (c->alarms) {
    AlarmPublisher* a = c->alarms.get();
    c->threads.emplace_back([a](std::stop_token stop) { a->Run(stop); });
  }
  for (auto& mirror : c->kafka_mirrors) {
    KafkaMirror* m = mirror.get();
    c->threads.emplace_back([m](std::stop_token stop) { m->Run(stop); });
  }
}

// `edgeline dlq replay` on ingest dead letters: the payloads go through mapping and the group
// commit again (a payload still bad becomes a new dead letter there). At-least-once: a crash
// between the commit and FinishReplay replays it once more.
void ReplayIngestDeadLetters(Queue* queue, GroupCommitter* committer) {
  auto requested = queue->ReplayRequested("ingest", 100);
  if (!requested.ok() || requested->empty()) return;
  std::vector<int64_t> done;
  for (const DeadLetter& d : *requested) {
    if (!committer->Submit(d.topic, d.payload, d.created_ns).ok()) break;  // committer stopping or failing: later
    done.push_back(d.id);
  }
  Status settled = queue->FinishReplay(done, {});
  LOG_INFO("agent") << "replayed " << done.size() << " ingest dead letters"
                    << (settled.ok() ? "" : " (not recorded: " + settled.ToString() + ")");
}

// The state write is also the watchdog's liveness signal.
Status WriteAgentState(Queue* queue, const Clock* clock, const GroupCommitter& committer,
                     const MqttIngest& mqtt, bool running, int64_t started_ns) {
  const auto& c = committer.counters();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"started_ns", std::to_string(started_ns)},
      {"pid", std::to_string(::getpid())},
      {"running", running ? "1" : "0"},
      {"heartbeat_ns", std::to_string(clock->WallNowNs())},
      {"mqtt_sessions", std::to_string(mqtt.sessions())},
      {"mqtt_sessions_connected", std::to_string(running ? mqtt.connected_sessions() : 0)},
      {"mqtt_last_error", mqtt.last_error()},
      {"last_message_ns", std::to_string(c.last_message_ns.load())},
      {"messages", std::to_string(c.messages.load())},
      {"committed_points", std::to_string(c.committed_points.load())},
      {"commits", std::to_string(c.commits.load())},
      {"ingest_rejected", std::to_string(c.rejected.load())},
      {"ingest_partial", std::to_string(c.partial.load())},
      {"commit_failures", std::to_string(c.commit_failures.load())},
      {"commit_failing", c.commit_failing.load() ? "1" : "0"},
      {"commit_problem", CommitProblem(c)},
  };
  Status st = queue->SetAgentState(kv);
  if (!st.ok()) LOG_WARN("agent") << "cannot record agent state: " << st.ToString();
  return st;
}

}  // namespace

int RunDaemon(const Config& config) {
  ::umask(077);
  SetLogLevel(config.log_level);
  const Clock* clock = &SystemClock::Instance();

  // Signals are taken synchronously by this thread; every thread started below inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::filesystem::path dir = std::filesystem::path(config.queue.path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
  }
  // One agent per queue file: a second one would ingest the same stream twice and race the
  // cursors. The lock dies with the process, so a SIGKILLed agent does not block its restart.
  const std::string lock_path = config.queue.path + ".lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    LOG_ERROR("agent") << "another edgeline is already running on " << config.queue.path
                       << " (cannot lock " << lock_path << ")";
    return 1;
  }
  QueueOpenOptions qopts;
  qopts.config = config.queue;
  auto opened = OpenSqliteQueue(qopts);
  if (!opened.ok()) {
    LOG_ERROR("agent") << "cannot open queue " << config.queue.path << ": " << opened.status().ToString();
    return 1;
  }
  std::unique_ptr<Queue> queue = std::move(opened).value();
  // No Stats() here: it counts the whole file, which with a large backlog delays the first write.
  LOG_INFO("agent") << "queue " << config.queue.path << " open";

  // Sinks registered before this are from an earlier configuration (status shows them inactive).
  const int64_t started_ns = clock->WallNowNs();
  Mapper mapper(config.mapping);
  GroupCommitter committer(queue.get(), &mapper, clock, CommitterOptions(config));
  // Paho runs every MQTT session of the process on one receive thread, so at most one MQTT
  // message waits for a commit at a time, whatever the number of sessions.
  committer.SetProducerCount(1);

  MqttIngest mqtt(config.mqtt, [&committer](std::string_view topic, std::string_view payload) {
    return committer.Submit(topic, payload);
  });
  std::atomic<bool> state_write_failing{false};
  Consumers consumers;
  Status registered = RegisterConsumers(config, queue.get(), clock, &mqtt, &consumers);
  if (!registered.ok()) {
    LOG_ERROR("agent") << "cannot start the sinks: " << registered.ToString();
    return 1;
  }
  {
    auto notify = consumers.notify_raw;
    committer.SetOnCommit([notify] {
      for (const auto& n : notify) n();
    });
  }
  // MQTT first: its sessions must exist before the alarm publisher or /health look at them.
  // Messages may arrive at once; their commits wake sinks that start just below.
  mqtt.Start();
  StartConsumers(&consumers);
  std::unique_ptr<HttpApi> http;
  if (config.http.enabled()) {
    HttpApiOptions options;
    options.listen = config.http.listen;
    options.token = config.http.token;
    options.max_body_bytes = config.http.max_body_bytes;
    AgentProbe probe;
    probe.mqtt_sessions = [&mqtt] { return mqtt.sessions(); };
    probe.mqtt_connected = [&mqtt] { return mqtt.connected_sessions(); };
    probe.ingest = &committer.counters();
    probe.state_write_failing = [&state_write_failing] { return state_write_failing.load(); };
    http = std::make_unique<HttpApi>(options, queue.get(), &committer, clock, probe);
    Status listening = http->Start();
    if (!listening.ok()) {
      // MQTT ingest does not depend on it: keep running, say so loudly.
      LOG_ERROR("http") << listening.message() << " (EDGELINE_HTTP_LISTEN): /health, /metrics and the write "
                        << "endpoints are off";
      http.reset();
    } else if (config.http.token.empty() && config.http.listen.rfind("127.", 0) != 0 &&
               config.http.listen.rfind("localhost:", 0) != 0 && config.http.listen.rfind("[::1]:", 0) != 0) {
      LOG_WARN("http") << "listening beyond loopback without EDGELINE_HTTP_TOKEN: anyone who reaches it can write";
    }
  }
  LOG_INFO("agent") << "edgeline running (pid " << ::getpid() << ")";
  NotifySystemd("READY=1\nSTATUS=running");

  std::jthread housekeeping([&](std::stop_token stop) {
    int64_t last_limits = clock->SteadyNowNs();
    do {
      // The watchdog is fed while this loop can write to the queue file: a wedged disk (or a
      // hung process) gets the agent restarted. A full queue under backpressure is not a reason:
      // its small state write still succeeds.
      Status state = WriteAgentState(queue.get(), clock, committer, mqtt, true, started_ns);
      state_write_failing = !state.ok();
      if (state.ok()) NotifySystemd("WATCHDOG=1");
      // A damaged queue file does not heal by retrying. Ending like a crash hands it to the
      // start-up check, which moves it aside (kept) and starts a fresh queue; the broker still
      // holds every message that was not acknowledged.
      if (state.code() == StatusCode::kCorruption || CommitProblem(committer.counters()) == "corrupt" ||
          queue->StartupCheck(/*wait=*/false).code() == StatusCode::kCorruption) {
        LOG_ERROR("agent") << "the queue file is corrupt; exiting so that the restart moves it aside";
        MarkQueueForCheck(config.queue.path);
        std::_Exit(kExitQueueCorrupt);
      }
      ReplayIngestDeadLetters(queue.get(), &committer);
      if (clock->SteadyNowNs() - last_limits >= kLimitsEveryNs) {
        last_limits = clock->SteadyNowNs();
        auto dropped = queue->EnforceLimits();
        if (dropped.ok() && *dropped > 0) {
          LOG_WARN("queue") << "dropped " << *dropped << " points past EDGELINE_QUEUE_MAX_AGE/MAX_BYTES";
        }
      }
    } while (!SleepUnlessStopped(stop, kHeartbeatNs));
  });

  int sig = 0;
  sigwait(&signals, &sig);
  LOG_INFO("agent") << "signal " << sig << ": shutting down";
  NotifySystemd("STOPPING=1");

  // A message callback blocked on a commit that cannot happen (disk full, queue full under
  // backpressure) holds Paho's global lock, and a graceful MQTT stop would wait for it forever.
  // Past the deadline we end the process the way a crash would: committed data is safe in the
  // WAL and unacknowledged messages stay with the broker.
  std::jthread shutdown_deadline([](std::stop_token stop) {
    if (SleepUnlessStopped(stop, kShutdownDeadlineNs)) return;
    LOG_ERROR("agent") << "shutdown did not finish within " << kShutdownDeadlineNs / 1'000'000'000
                       << "s (a commit is blocked); exiting now";
    std::_Exit(1);
  });

  // MQTT first: callbacks blocked in Submit complete while the committer still runs, so every
  // acknowledged message is committed and nothing uncommitted is acknowledged.
  mqtt.Stop();
  if (http) http->Stop();  // writes in flight finish their commit first
  committer.Stop();
  housekeeping.request_stop();
  housekeeping.join();
  consumers.StopAll();
  (void)WriteAgentState(queue.get(), clock, committer, mqtt, false, started_ns);
  shutdown_deadline.request_stop();
  LOG_INFO("agent") << "stopped";
  return 0;
}

}  // namespace edgeline
