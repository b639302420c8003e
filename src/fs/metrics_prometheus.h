// The mount's counters in the Prometheus text exposition format (version 0.0.4), served on
// GET /metrics with -o metrics=ADDRESS:PORT (metrics_http.h). Pool series have no vLUN labels;
// per-vLUN series (vlunfs_vlun_*) carry ino and path, so that a sum over them never counts twice.
#pragma once

#include "fs/filesystem.h"
#include "fs/metrics.h"

#include <string>
#include <string_view>
#include <vector>

namespace vlunfs::fs {

// A label value quoted as the format wants: backslash, double quote and newline escaped.
std::string prometheus_label_value(std::string_view value);
std::string render_prometheus(const PoolStats& pool, const MetricsReport& metrics, const std::vector<VlunReport>& vluns);

}  // namespace vlunfs::fs
