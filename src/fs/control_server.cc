#include "fs/control_server.h"

#include "fs/control_commands.h"
#include "vlunfs/control_ioctl.h"

#include <algorithm>
#include <cstring>

namespace vlunfs::fs {

namespace {

// Identifies one rendering of an answer across its pages (FNV-1a; never 0, which asks for a new one).
uint64_t answer_id_of(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h ? h : 1;
}

template <class Request>
std::error_code decode(const void* in, size_t in_size, size_t out_size, Request* request) {
  if (in_size != sizeof(Request) || out_size != sizeof(Request)) return errno_error(EINVAL);
  std::memcpy(request, in, sizeof(Request));
  if (request->header.version != VLUNFS_IOC_VERSION) return errno_error(EPROTO);
  return {};
}

template <class Request>
void encode(Request* request, std::vector<char>* out) {
  request->header.magic = VLUNFS_IOC_MAGIC;
  const char* bytes = reinterpret_cast<const char*>(request);
  out->assign(bytes, bytes + sizeof(Request));
}

std::error_code answer_report(Filesystem& fs, const Caller& who, vlunfs_ioc_report* r) {
  std::string text;
  if (r->what == VLUNFS_REPORT_VLUNS) {
    text = list_vluns(fs, who);
  } else if (r->what == VLUNFS_REPORT_POOL) {
    text = pool_info(fs);
  } else if (r->what == VLUNFS_REPORT_STATS) {
    text = stats_report(fs, who);
  } else {
    return errno_error(EINVAL);
  }
  const uint64_t id = answer_id_of(text);
  if (r->answer_id != 0 && r->answer_id != id) return errno_error(ESTALE);  // changed between pages
  if (r->offset > text.size()) return errno_error(EINVAL);
  const size_t length = std::min<size_t>(VLUNFS_REPORT_PAGE, text.size() - r->offset);
  std::memcpy(r->text, text.data() + r->offset, length);
  r->length = static_cast<uint32_t>(length);
  r->total = text.size();
  r->answer_id = id;
  return {};
}

std::error_code answer_clone(Filesystem& fs, const Caller& who, uint64_t ino, const vlunfs_ioc_clone& c) {
  if (c.flags & ~VLUNFS_CLONE_SNAPSHOT) return errno_error(EINVAL);
  const size_t length = strnlen(c.name, sizeof c.name);
  if (length == 0 || length == sizeof c.name || std::memchr(c.name, '/', length)) return errno_error(EINVAL);
  return clone_vlun(fs, who, ino, c.dest_dir, std::string(c.name, length), (c.flags & VLUNFS_CLONE_SNAPSHOT) != 0);
}

}  // namespace

std::error_code answer_control_ioctl(Filesystem& fs, const Caller& who, uint64_t ino, unsigned cmd,
                                     const void* in, size_t in_size, size_t out_size, std::vector<char>* out) {
  switch (cmd) {
    case VLUNFS_IOC_REPORT: {
      vlunfs_ioc_report r;
      if (auto ec = decode(in, in_size, out_size, &r)) return ec;
      if (auto ec = answer_report(fs, who, &r)) return ec;
      encode(&r, out);
      return {};
    }
    case VLUNFS_IOC_CLONE: {
      vlunfs_ioc_clone c;
      if (auto ec = decode(in, in_size, out_size, &c)) return ec;
      if (auto ec = answer_clone(fs, who, ino, c)) return ec;
      encode(&c, out);
      return {};
    }
    case VLUNFS_IOC_SET_THIN: {
      vlunfs_ioc_thin t;
      if (auto ec = decode(in, in_size, out_size, &t)) return ec;
      if (t.thin > 1) return errno_error(EINVAL);
      if (auto ec = set_vlun_thin(fs, who, ino, t.thin == 1)) return ec;
      encode(&t, out);
      return {};
    }
    case VLUNFS_IOC_SYNC: {
      vlunfs_ioc_sync s;
      if (auto ec = decode(in, in_size, out_size, &s)) return ec;
      if (auto ec = sync_pool(fs)) return ec;
      encode(&s, out);
      return {};
    }
    default:
      return errno_error(ENOTTY);
  }
}

}  // namespace vlunfs::fs
