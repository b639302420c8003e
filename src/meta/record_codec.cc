// Journal payload encoding of Records (record_codec.h, docs/format.md "Record payloads").

#include "meta/record_codec.h"

#include "meta/coding.h"

#include <cerrno>
#include <type_traits>

namespace vlunfs::meta {

namespace {

// A payload length is a u32; this many LXT entries keep any record far below that.
constexpr size_t kMaxEntriesPerRecord = size_t{1} << 28;

template <class T>
constexpr RecordType type_of() {
  if constexpr (std::is_same_v<T, CreateRecord>) return RecordType::create;
  if constexpr (std::is_same_v<T, LinkRecord>) return RecordType::link;
  if constexpr (std::is_same_v<T, UnlinkRecord>) return RecordType::unlink;
  if constexpr (std::is_same_v<T, RenameRecord>) return RecordType::rename;
  if constexpr (std::is_same_v<T, SetAttrRecord>) return RecordType::set_attr;
  if constexpr (std::is_same_v<T, ResizeRecord>) return RecordType::resize;
  if constexpr (std::is_same_v<T, MapRecord>) return RecordType::map;
  if constexpr (std::is_same_v<T, FreeRecord>) return RecordType::free;
  if constexpr (std::is_same_v<T, OriginRecord>) return RecordType::origin;
}

void encode_entries(Encoder& e, const std::vector<uint64_t>& entries) {
  e.u32(static_cast<uint32_t>(entries.size()));
  for (uint64_t entry : entries) e.u64(entry);
}

// LXT entries: the count is believed only if the payload still holds that many.
bool decode_entries(Decoder& d, std::vector<uint64_t>* out) {
  const uint32_t n = d.u32();
  if (!d.ok() || n > d.remaining() / 8) {
    d.fail();
    return false;
  }
  out->resize(n);
  for (uint32_t i = 0; i < n; i++) (*out)[i] = d.u64();
  return d.ok();
}

std::string decode_name(Decoder& d) { return d.text(d.u8()); }

}  // namespace

RecordType record_type(const Record& record) {
  if (const auto* create = std::get_if<CreateRecord>(&record); create && is_special_file(create->mode)) {
    return RecordType::create_node;  // format 3: it carries the rdev, and only version 3 reads it
  }
  return std::visit([](const auto& r) { return type_of<std::decay_t<decltype(r)>>(); }, record);
}

std::error_code check_encodable(const Record& record) {
  auto name_ok = [](const std::string& name) { return name.size() <= MAX_NAME; };
  return std::visit(
      [&](const auto& r) -> std::error_code {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, CreateRecord>) {
          if (!name_ok(r.name) || r.symlink.size() > MAX_SYMLINK) return errno_error(ENAMETOOLONG);
        } else if constexpr (std::is_same_v<T, LinkRecord> || std::is_same_v<T, UnlinkRecord>) {
          if (!name_ok(r.name)) return errno_error(ENAMETOOLONG);
        } else if constexpr (std::is_same_v<T, RenameRecord>) {
          if (!name_ok(r.src_name) || !name_ok(r.dst_name)) return errno_error(ENAMETOOLONG);
        } else if constexpr (std::is_same_v<T, ResizeRecord> || std::is_same_v<T, MapRecord>) {
          if (r.entries.size() > kMaxEntriesPerRecord) return errno_error(EFBIG);
        }
        return {};
      },
      record);
}

std::vector<std::byte> encode_record(const Record& record) {
  std::vector<std::byte> out;
  Encoder e(&out);
  std::visit(
      [&e](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, CreateRecord>) {
          e.u64(r.parent);
          e.name(r.name);
          e.u64(r.ino);
          e.u32(r.mode);
          e.u32(r.uid);
          e.u32(r.gid);
          e.i64(r.time_ns);
          e.text16(r.symlink);
          if (is_special_file(r.mode)) e.u64(r.rdev);
        } else if constexpr (std::is_same_v<T, LinkRecord>) {
          e.u64(r.ino);
          e.u64(r.parent);
          e.name(r.name);
          e.i64(r.time_ns);
        } else if constexpr (std::is_same_v<T, UnlinkRecord>) {
          e.u64(r.parent);
          e.name(r.name);
          e.i64(r.time_ns);
        } else if constexpr (std::is_same_v<T, RenameRecord>) {
          e.u64(r.src_parent);
          e.name(r.src_name);
          e.u64(r.dst_parent);
          e.name(r.dst_name);
          e.u32(r.flags);
          e.i64(r.time_ns);
        } else if constexpr (std::is_same_v<T, SetAttrRecord>) {
          e.u64(r.ino);
          e.u32(r.valid);
          e.u32(r.mode);
          e.u32(r.uid);
          e.u32(r.gid);
          e.u32(r.flags);
          e.i64(r.atime_ns);
          e.i64(r.mtime_ns);
          e.i64(r.ctime_ns);
        } else if constexpr (std::is_same_v<T, ResizeRecord>) {
          e.u64(r.ino);
          e.u64(r.size);
          e.u32(r.lxt_count);
          e.u32(r.first_index);
          e.i64(r.time_ns);
          encode_entries(e, r.entries);
        } else if constexpr (std::is_same_v<T, MapRecord>) {
          e.u64(r.ino);
          e.u32(r.first_index);
          e.i64(r.time_ns);
          encode_entries(e, r.entries);
        } else if constexpr (std::is_same_v<T, FreeRecord>) {
          e.u64(r.ino);
        } else if constexpr (std::is_same_v<T, OriginRecord>) {
          e.u64(r.ino);
          e.u64(r.origin);
        }
      },
      record);
  return out;
}

Result<Record, Error> decode_record(uint8_t type, std::span<const std::byte> payload) {
  Decoder d(payload);
  Record record;
  switch (static_cast<RecordType>(type)) {
    case RecordType::create:
    case RecordType::create_node: {
      const bool node = static_cast<RecordType>(type) == RecordType::create_node;
      CreateRecord r;
      r.parent = d.u64();
      r.name = decode_name(d);
      r.ino = d.u64();
      r.mode = d.u32();
      r.uid = d.u32();
      r.gid = d.u32();
      r.time_ns = d.i64();
      const uint16_t symlink_length = d.u16();
      if (d.ok() && symlink_length > MAX_SYMLINK) {
        return make_error(EUCLEAN, "symlink target of " + std::to_string(symlink_length) + " bytes");
      }
      r.symlink = d.text(symlink_length);
      if (node) r.rdev = d.u64();
      if (d.ok() && node != is_special_file(r.mode)) {
        return make_error(EUCLEAN, node ? "a Create node record for a file that is not special" : "a Create record for a special file");
      }
      record = std::move(r);
      break;
    }
    case RecordType::link: {
      LinkRecord r;
      r.ino = d.u64();
      r.parent = d.u64();
      r.name = decode_name(d);
      r.time_ns = d.i64();
      record = std::move(r);
      break;
    }
    case RecordType::unlink: {
      UnlinkRecord r;
      r.parent = d.u64();
      r.name = decode_name(d);
      r.time_ns = d.i64();
      record = std::move(r);
      break;
    }
    case RecordType::rename: {
      RenameRecord r;
      r.src_parent = d.u64();
      r.src_name = decode_name(d);
      r.dst_parent = d.u64();
      r.dst_name = decode_name(d);
      r.flags = d.u32();
      r.time_ns = d.i64();
      record = std::move(r);
      break;
    }
    case RecordType::set_attr: {
      SetAttrRecord r;
      r.ino = d.u64();
      r.valid = d.u32();
      r.mode = d.u32();
      r.uid = d.u32();
      r.gid = d.u32();
      r.flags = d.u32();
      r.atime_ns = d.i64();
      r.mtime_ns = d.i64();
      r.ctime_ns = d.i64();
      record = std::move(r);
      break;
    }
    case RecordType::resize: {
      ResizeRecord r;
      r.ino = d.u64();
      r.size = d.u64();
      r.lxt_count = d.u32();
      r.first_index = d.u32();
      r.time_ns = d.i64();
      decode_entries(d, &r.entries);
      record = std::move(r);
      break;
    }
    case RecordType::map: {
      MapRecord r;
      r.ino = d.u64();
      r.first_index = d.u32();
      r.time_ns = d.i64();
      decode_entries(d, &r.entries);
      record = std::move(r);
      break;
    }
    case RecordType::free: {
      FreeRecord r;
      r.ino = d.u64();
      record = std::move(r);
      break;
    }
    case RecordType::origin: {
      OriginRecord r;
      r.ino = d.u64();
      r.origin = d.u64();
      record = std::move(r);
      break;
    }
    default:
      return make_error(EUCLEAN, "unknown record type " + std::to_string(type));
  }
  if (!d.ok()) {
    return make_error(EUCLEAN, "payload of " + std::to_string(payload.size()) + " bytes is too short for its fields");
  }
  if (d.remaining() != 0) {
    return make_error(EUCLEAN, std::to_string(d.remaining()) + " bytes left over after the record's fields");
  }
  return record;
}

}  // namespace vlunfs::meta
