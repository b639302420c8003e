#include "fs/metrics_prometheus.h"

#include <cstdio>
#include <map>

namespace vlunfs::fs {

namespace {

class Exposition {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // labels: already rendered as name="value",... (or empty)
  void sample(const std::string& name, const std::string& labels, uint64_t value) {
    line(name, labels);
    out_ += std::to_string(value);
    out_ += '\n';
  }
  void sample(const std::string& name, const std::string& labels, double value) {
    line(name, labels);
    char text[40];
    std::snprintf(text, sizeof text, "%.9g", value);
    out_ += text;
    out_ += '\n';
  }
  void histogram(const std::string& name, const std::string& labels, const HistogramSnapshot& h) {
    const std::string sep = labels.empty() ? "" : ",";
    uint64_t cumulative = 0;
    for (unsigned b = 0; b < HistogramSnapshot::kBuckets; ++b) {
      cumulative += h.counts[b];
      char le[40];
      std::snprintf(le, sizeof le, "%.9g", static_cast<double>(HistogramSnapshot::upper_bound_ns(b)) / 1e9);
      sample(name + "_bucket", labels + sep + "le=\"" + le + "\"", cumulative);
    }
    sample(name + "_bucket", labels + sep + "le=\"+Inf\"", cumulative);
    sample(name + "_sum", labels, static_cast<double>(h.sum_ns) / 1e9);
    sample(name + "_count", labels, cumulative);
  }
  std::string take() { return std::move(out_); }

 private:
  void line(const std::string& name, const std::string& labels) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
  }
  std::string out_;
};

std::string op_label(unsigned op) { return std::string("op=\"") + op_name(static_cast<Op>(op)) + "\""; }

}  // namespace

std::string prometheus_label_value(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string render_prometheus(const PoolStats& pool, const MetricsReport& m, const std::vector<VlunReport>& vluns) {
  Exposition e;
  e.family("vlunfs_requests_total", "counter", "Requests served, by operation (read, write, fsync).");
  for (unsigned op = 0; op < kOpCount; ++op) e.sample("vlunfs_requests_total", op_label(op), m.pool.ops[op].requests);
  e.family("vlunfs_request_errors_total", "counter", "Requests that failed, by operation.");
  for (unsigned op = 0; op < kOpCount; ++op) e.sample("vlunfs_request_errors_total", op_label(op), m.pool.ops[op].errors);
  e.family("vlunfs_bytes_total", "counter", "Bytes read or written, by operation.");
  for (unsigned op = 0; op < kOpCount; ++op) e.sample("vlunfs_bytes_total", op_label(op), m.pool.ops[op].bytes);
  e.family("vlunfs_request_duration_seconds", "histogram", "Time to serve a request in the daemon, by operation.");
  for (unsigned op = 0; op < kOpCount; ++op) {
    e.histogram("vlunfs_request_duration_seconds", op_label(op), m.pool.ops[op].latency);
  }
  e.family("vlunfs_cow_breaks_total", "counter", "Shared chunks copied so that a write could go ahead.");
  e.sample("vlunfs_cow_breaks_total", "", m.pool.cow_breaks);
  e.family("vlunfs_journal_records_total", "counter", "Records appended to the metadata journal.");
  e.sample("vlunfs_journal_records_total", "", m.journal_records);
  e.family("vlunfs_journal_wait_seconds", "histogram", "Time a caller waited for its journal record to be durable.");
  e.histogram("vlunfs_journal_wait_seconds", "", m.journal_wait);
  e.family("vlunfs_afu_commands_total", "counter", "Data-path AFU commands (READ/WRITE 16), by IOASA afu_rc.");
  for (const auto& [rc, n] : m.afu_commands) {
    char label[32];
    std::snprintf(label, sizeof label, "afu_rc=\"0x%02x\"", rc);
    e.sample("vlunfs_afu_commands_total", label, n);
  }
  e.family("vlunfs_chunks", "gauge", "Chunks of the pool, by state (free includes reserved).");
  const std::pair<const char*, uint64_t> states[] = {{"total", pool.total_chunks},   {"mapped", pool.mapped_chunks},
                                                     {"shared", pool.shared_chunks}, {"reserved", pool.reserved_chunks},
                                                     {"free", pool.free_chunks}};
  for (const auto& [state, n] : states) e.sample("vlunfs_chunks", std::string("state=\"") + state + "\"", n);
  e.family("vlunfs_chunk_bytes", "gauge", "Bytes in one chunk.");
  e.sample("vlunfs_chunk_bytes", "", pool.chunk_bytes);

  std::map<uint64_t, const VlunMetricsSnapshot*> by_ino;
  for (const auto& [ino, counters] : m.vluns) by_ino[ino] = &counters;
  struct Row {
    std::string labels;
    const VlunMetricsSnapshot* counters;
    const VlunReport* report;
  };
  std::vector<Row> rows;
  for (const VlunReport& r : vluns) {
    if (auto it = by_ino.find(r.ino); it != by_ino.end()) {
      rows.push_back({"ino=\"" + std::to_string(r.ino) + "\",path=" + prometheus_label_value(r.path), it->second, &r});
    }
  }
  e.family("vlunfs_vlun_requests_total", "counter", "Requests served for one vLUN, by operation.");
  for (const Row& row : rows) {
    for (unsigned op = 0; op < kOpCount; ++op) {
      e.sample("vlunfs_vlun_requests_total", row.labels + "," + op_label(op), row.counters->ops[op].requests);
    }
  }
  e.family("vlunfs_vlun_bytes_total", "counter", "Bytes read or written for one vLUN, by operation.");
  for (const Row& row : rows) {
    for (unsigned op = 0; op < kOpCount; ++op) {
      e.sample("vlunfs_vlun_bytes_total", row.labels + "," + op_label(op), row.counters->ops[op].bytes);
    }
  }
  e.family("vlunfs_vlun_cow_breaks_total", "counter", "Shared chunks one vLUN copied to write.");
  for (const Row& row : rows) e.sample("vlunfs_vlun_cow_breaks_total", row.labels, row.counters->cow_breaks);
  e.family("vlunfs_vlun_chunks", "gauge", "Chunks one vLUN maps, and how many of them are shared.");
  for (const Row& row : rows) {
    e.sample("vlunfs_vlun_chunks", row.labels + ",state=\"mapped\"", row.report->mapped);
    e.sample("vlunfs_vlun_chunks", row.labels + ",state=\"shared\"", row.report->shared);
  }
  return e.take();
}

}  // namespace vlunfs::fs
