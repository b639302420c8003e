// The mount's counters (fs/metrics.h), their Prometheus rendering (fs/metrics_prometheus.h) and
// the HTTP answers of GET /metrics (fs/metrics_http.h).
#include "fs/metrics.h"
#include "fs/metrics_http.h"
#include "fs/metrics_prometheus.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace vlunfs::fs {
namespace {

TEST(HistogramTest, BucketsArePowersOfTwoNanoseconds) {
  EXPECT_EQ(HistogramSnapshot::bucket_of(0), 0u);
  EXPECT_EQ(HistogramSnapshot::bucket_of(1), 0u);
  EXPECT_EQ(HistogramSnapshot::bucket_of(2), 1u);
  EXPECT_EQ(HistogramSnapshot::bucket_of(1023), 9u);
  EXPECT_EQ(HistogramSnapshot::bucket_of(1024), 10u);
  EXPECT_EQ(HistogramSnapshot::bucket_of(~uint64_t{0}), HistogramSnapshot::kBuckets - 1);
}

TEST(HistogramTest, PercentilesInterpolateWithinTheBucket) {
  LatencyHistogram h;
  EXPECT_EQ(h.snapshot().percentile_ns(0.5), 0u);  // no samples
  for (int i = 0; i < 90; ++i) h.record(1500);      // bucket [1024, 2048)
  for (int i = 0; i < 10; ++i) h.record(100000);    // bucket [65536, 131072)
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.sum_ns, 90u * 1500 + 10u * 100000);
  // p50: the 50th of 90 samples in [1024, 2048): 1024 + 1024 * 50/90.
  EXPECT_EQ(s.percentile_ns(0.5), 1024u + 1024u * 50 / 90);
  // p99: the 99th sample, the 9th of 10 in [65536, 131072).
  EXPECT_EQ(s.percentile_ns(0.99), 65536u + 65536u * 9 / 10);
  EXPECT_EQ(s.percentile_ns(1.0), 131072u);
  EXPECT_GE(s.percentile_ns(0.9), 1024u);
  EXPECT_LE(s.percentile_ns(0.9), 2048u);
}

TEST(ScopedOpTest, CountsRequestsBytesAndErrors) {
  VlunMetrics m;
  {
    ScopedOp op(m.op(Op::write));
    op.done(4096);
  }
  { ScopedOp failed(m.op(Op::write)); }
  m.count_cow_break();
  const VlunMetricsSnapshot s = m.snapshot();
  const OpSnapshot& w = s.ops[static_cast<unsigned>(Op::write)];
  EXPECT_EQ(w.requests, 2u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_EQ(w.bytes, 4096u);
  EXPECT_EQ(w.latency.count, 2u);
  EXPECT_EQ(s.ops[static_cast<unsigned>(Op::read)].requests, 0u);
  EXPECT_EQ(s.cow_breaks, 1u);
}

TEST(PoolMetricsTest, ARemovedFileStaysCountedInThePool) {
  PoolMetrics pool;
  VlunMetrics file;
  { ScopedOp(file.op(Op::read)).done(512); }
  pool.retire(file);
  EXPECT_EQ(pool.retired().ops[static_cast<unsigned>(Op::read)].bytes, 512u);
  pool.afu_commands().count(0);
  pool.afu_commands().count(0x21);
  std::thread other([&] { pool.afu_commands().count(0); });
  other.join();
  EXPECT_EQ(pool.afu_commands().total(0), 2u);
  EXPECT_EQ(pool.afu_commands().total(0x21), 1u);
}

TEST(PrometheusTest, LabelValuesAreEscaped) {
  EXPECT_EQ(prometheus_label_value("a\"b\\c\nd\te"), "\"a\\\"b\\\\c\\nd\te\"");
}

TEST(PrometheusTest, RendersCountersHistogramsAndGauges) {
  PoolStats pool;
  pool.total_chunks = 100;
  pool.free_chunks = 60;
  pool.mapped_chunks = 40;
  MetricsReport m;
  m.pool.ops[static_cast<unsigned>(Op::read)].requests = 7;
  m.pool.ops[static_cast<unsigned>(Op::read)].bytes = 7 * 4096;
  m.pool.ops[static_cast<unsigned>(Op::read)].latency.counts[10] = 5;  // [1024, 2048) ns
  m.pool.ops[static_cast<unsigned>(Op::read)].latency.counts[20] = 2;
  m.pool.ops[static_cast<unsigned>(Op::read)].latency.sum_ns = 3000000;
  m.afu_commands = {{0, 7}, {0x21, 1}};
  VlunMetricsSnapshot file;
  file.ops[static_cast<unsigned>(Op::write)].requests = 3;
  m.vluns = {{12, file}};
  VlunReport r;
  r.ino = 12;
  r.path = "/a\"b";
  r.mapped = 2;
  const std::string text = render_prometheus(pool, m, {r});
  EXPECT_NE(text.find("# TYPE vlunfs_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_requests_total{op=\"read\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_bytes_total{op=\"read\"} 28672\n"), std::string::npos);
  // Buckets are cumulative and in seconds; +Inf is the count.
  EXPECT_NE(text.find("\nvlunfs_request_duration_seconds_bucket{op=\"read\",le=\"1.024e-06\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_request_duration_seconds_bucket{op=\"read\",le=\"2.048e-06\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_request_duration_seconds_bucket{op=\"read\",le=\"0.002097152\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_request_duration_seconds_bucket{op=\"read\",le=\"+Inf\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_request_duration_seconds_sum{op=\"read\"} 0.003\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_request_duration_seconds_count{op=\"read\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_afu_commands_total{afu_rc=\"0x21\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_chunks{state=\"free\"} 60\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_vlun_requests_total{ino=\"12\",path=\"/a\\\"b\",op=\"write\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("\nvlunfs_vlun_chunks{ino=\"12\",path=\"/a\\\"b\",state=\"mapped\"} 2\n"), std::string::npos);
  // Every line is a comment or NAME[{LABELS}] VALUE.
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    const std::string line = text.substr(start, end - start);
    if (line[0] != '#') {
      EXPECT_EQ(line.rfind("vlunfs_", 0), 0u) << line;
      EXPECT_NE(line.rfind(' '), std::string::npos) << line;
    }
    start = end + 1;
  }
}

TEST(MetricsHttpTest, AnswersGetMetricsAndRefusesTheRest) {
  auto body = [] { return std::string("vlunfs_x 1\n"); };
  HttpAnswer ok = answer_http_request("GET /metrics HTTP/1.1\r\nHost: x", body);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "vlunfs_x 1\n");
  EXPECT_NE(ok.render().find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(ok.render().find("Content-Length: 11\r\n"), std::string::npos);
  EXPECT_EQ(answer_http_request("GET /metrics?x=1 HTTP/1.0", body).status, 200);
  HttpAnswer head = answer_http_request("HEAD /metrics HTTP/1.1", body);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.render().find("vlunfs_x"), std::string::npos);
  EXPECT_EQ(answer_http_request("GET / HTTP/1.1", body).status, 404);
  EXPECT_EQ(answer_http_request("POST /metrics HTTP/1.1", body).status, 405);
  EXPECT_NE(answer_http_request("POST /metrics HTTP/1.1", body).render().find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(answer_http_request("GET /metrics", body).status, 400);
  EXPECT_EQ(answer_http_request("GET /metrics SMTP/1.0", body).status, 400);
  EXPECT_EQ(answer_http_request("GET  /metrics HTTP/1.1", body).status, 400);
  EXPECT_EQ(answer_http_request("", body).status, 400);
  EXPECT_EQ(answer_http_request("\x16\x03\x01garbage", body).status, 400);
}

TEST(MetricsHttpTest, ABarePortMeansLoopback) {
  auto a = parse_listen_address("9100");
  ASSERT_TRUE(a) << a.error().message;
  const auto* in = reinterpret_cast<const sockaddr_in*>(&a.value().address);
  EXPECT_EQ(in->sin_family, AF_INET);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
  EXPECT_EQ(ntohs(in->sin_port), 9100);
  EXPECT_TRUE(parse_listen_address("[::1]:9100"));
  EXPECT_TRUE(parse_listen_address("0.0.0.0:9100"));
  auto named = parse_listen_address("example.com:9100");
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().value(), EINVAL);
  EXPECT_EQ(named.error().message, "'example.com' is not a numeric IPv4 or IPv6 address (or localhost)");
  auto too_high = parse_listen_address("127.0.0.1:99999");
  ASSERT_FALSE(too_high);
  EXPECT_EQ(too_high.error().message, "'127.0.0.1:99999' is not ADDRESS:PORT (e.g. 127.0.0.1:9100) nor a port");
  EXPECT_FALSE(parse_listen_address("127.0.0.1:"));
}

TEST(MetricsHttpTest, ServesOverASocketAndStops) {
  auto server = MetricsServer::start("127.0.0.1:0", [] { return std::string("vlunfs_up 1\n"); });
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_NE(server.value()->port(), 0);
  auto ask = [&](const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server.value()->port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return answer;
  };
  const std::string ok = ask("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("\r\n\r\nvlunfs_up 1\n"), std::string::npos);
  EXPECT_EQ(ask("nonsense\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  // A second server on the same port is refused with a reason.
  auto again = MetricsServer::start("127.0.0.1:" + std::to_string(server.value()->port()), [] { return std::string(); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().value(), EADDRINUSE);
  EXPECT_NE(again.error().message.find("choose another port"), std::string::npos) << again.error().message;
  server.value().reset();  // joins the thread; the test ends only if it stopped
}

}  // namespace
}  // namespace vlunfs::fs
