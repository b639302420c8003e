// MetaStore: mount (choose a superblock and checkpoint, replay the journal) and the live store
// (append, group commit, checkpoints). docs/format.md explains the algorithm and why it is safe.

#include "meta/checkpoint.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "meta/journal_reader.h"
#include "meta/journal_record.h"
#include "meta/journal_writer.h"
#include "meta/record_codec.h"
#include "meta/superblock.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace vlunfs::meta {

namespace {

std::string hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "%08x", v);
  return text;
}

std::string copy_name(int copy) {
  return "superblock copy " + std::to_string(copy) + " at byte " + std::to_string(kSuperblockOffset[copy]);
}

// Limits that depend on the geometry rather than on the namespace; append() and replay both check
// them, so the live store and a remount agree on what is valid. A thick LXT cannot have more
// entries than the device has chunks, but a thin one maps unwritten chunks to the zero chunk, so
// the bound is the overcommit limit; a record claiming more must not make replay allocate it.
std::error_code check_limits(const Geometry& g, const Record& record) {
  if (const auto* resize = std::get_if<ResizeRecord>(&record)) {
    if (resize->lxt_count > max_lxt_entries(g)) return errno_error(EFBIG);
  }
  return {};
}

class MetaStoreImpl final : public MetaStore {
 public:
  MetaStoreImpl(store::BlockStore& device, bool read_only, const Superblock& sb, uint64_t next_generation,
                Namespace ns)
      : device_(device), read_only_(read_only), sb_(sb), next_generation_(next_generation), ns_(std::move(ns)),
        image_bound_(checkpoint_size(ns_)),
        journal_(device, sb.geometry.journal_offset, sb.geometry.journal_bytes) {}

  JournalWriter& journal() { return journal_; }

  const Geometry& geometry() const override { return sb_.geometry; }
  Namespace& ns() override { return ns_; }

  Result<uint64_t> append(const Record& record) override {
    if (read_only_) return errno_error(EROFS);
    if (journal_.failed()) return errno_error(EIO);
    if (auto ec = check_encodable(record)) return ec;
    if (auto ec = check_limits(sb_.geometry, record)) return ec;
    const std::vector<std::byte> payload = encode_record(record);
    // The namespace never outgrows a checkpoint slot: a full journal can then always be folded
    // into a checkpoint, so removals go on working however full the metadata gets.
    const int64_t growth = checkpoint_growth(ns_, record);
    if (growth > 0 && image_bound_ + static_cast<uint64_t>(growth) > sb_.geometry.checkpoint_bytes) {
      image_bound_ = checkpoint_size(ns_);  // removals are estimated short: make the bound exact
      if (image_bound_ + static_cast<uint64_t>(growth) > sb_.geometry.checkpoint_bytes) return errno_error(ENOSPC);
    }

    if (!journal_.fits_empty(payload.size())) {
      // Larger than the whole journal: it reaches the disk inside a checkpoint instead, applied to
      // a copy first so that a failed checkpoint leaves ns_ as it was.
      Namespace next = ns_;
      // Qualified: a Record argument would bring std::apply in through argument-dependent lookup.
      if (auto ec = meta::apply(next, record)) return ec;
      uint64_t first_seq = 0;
      if (auto ec = write_checkpoint(next, /*folded=*/1, &first_seq)) return ec;
      ns_ = std::move(next);
      return first_seq - 1;  // write_checkpoint() made image_bound_ exact
    }
    if (!journal_.fits(payload.size())) {
      // The caller holds its lock, so ns_ is consistent; the checkpoint makes every record
      // appended so far durable, and the journal starts over empty.
      if (auto ec = write_checkpoint(ns_, 0, nullptr)) return ec;
    }
    if (auto ec = meta::apply(ns_, record)) return ec;
    image_bound_ = static_cast<uint64_t>(std::max<int64_t>(static_cast<int64_t>(image_bound_) + growth, 0));
    return journal_.add(record_type(record), payload);
  }

  std::error_code wait_durable(uint64_t seq) override { return journal_.wait_durable(seq); }

  std::error_code checkpoint() override {
    if (read_only_) return errno_error(EROFS);
    return write_checkpoint(ns_, 0, nullptr);
  }

  double journal_fill() const override { return journal_.fill(); }

 private:
  // Writes `ns` as the checkpoint of the next generation, holding every record handed out so far
  // plus `folded` more that are in `ns` but were never journaled. Order (docs/format.md "Write
  // order"): image into the slot the current superblock does not use, flush, superblock into the
  // copy the current one does not use, flush. Until that last flush, the current superblock, its
  // checkpoint and its journal are all untouched.
  std::error_code write_checkpoint(const Namespace& ns, uint64_t folded, uint64_t* first_seq_out) {
    uint64_t last_seq = 0;
    if (auto ec = journal_.begin_checkpoint(&last_seq)) return ec;
    const Geometry& g = sb_.geometry;
    const uint64_t generation = next_generation_;
    const uint64_t first_seq = last_seq + 1 + folded;
    std::vector<std::byte> image = encode_checkpoint(ns, generation, first_seq);
    if (image.size() > g.checkpoint_bytes) {  // an image that outgrew its slot before append() bounded it
      journal_.end_checkpoint_unchanged();
      return errno_error(ENOSPC);
    }
    const uint64_t image_bytes = image.size();
    Superblock next = sb_;
    next.geometry.version = kFormatVersion;  // encode_superblock() writes this version
    next.generation = generation;
    next.checkpoint_offset = g.checkpoint_offset[generation % 2];
    next.checkpoint_length = image.size();
    next.checkpoint_crc = crc32c(image.data(), image.size());
    next.journal_epoch = generation;
    next.journal_first_seq = first_seq;
    image.resize((image.size() + kMetaBlock - 1) / kMetaBlock * kMetaBlock);  // slots are whole blocks

    std::error_code ec = device_.write(next.checkpoint_offset, image);
    if (!ec) ec = device_.flush();
    if (!ec) ec = device_.write(kSuperblockOffset[generation % 2], encode_superblock(next));
    if (!ec) ec = device_.flush();
    if (ec) {
      // Which superblock the device now holds is unknown, and so is whether the journal's pending
      // records made it: refuse everything from here on, as for a failed journal write.
      journal_.end_checkpoint_failed();
      return errno_error(EIO);
    }
    sb_ = next;
    next_generation_ = generation + 1;
    image_bound_ = image_bytes;  // `ns` is, or is about to become, ns_
    journal_.end_checkpoint_reset(generation, first_seq, journal_seed(g.uuid, generation, first_seq));
    if (first_seq_out != nullptr) *first_seq_out = first_seq;
    return {};
  }

  store::BlockStore& device_;
  const bool read_only_;
  // sb_, next_generation_ and ns_ change only in append() and checkpoint(), which the caller
  // serialises with its own lock (meta.h); the journal writer has its own mutex for wait_durable().
  Superblock sb_;
  uint64_t next_generation_;
  Namespace ns_;
  // An upper bound of checkpoint_size(ns_), which append() keeps within the checkpoint slot.
  uint64_t image_bound_;
  JournalWriter journal_;
};

// One superblock copy as open() found it.
struct Copy {
  DecodedSuperblock decoded;  // state, superblock, and what is wrong with it
  bool read_error = false;
};

}  // namespace

Result<std::unique_ptr<MetaStore>, Error> MetaStore::open(store::BlockStore& device, const OpenOptions& options,
                                                          OpenReport* report) {
  OpenReport local_report;
  OpenReport& rep = report != nullptr ? *report : local_report;
  rep = OpenReport{};
  auto refuse = [](int e, std::string message) { return make_error(e, std::move(message)); };
  const uint64_t device_bytes = device.size_bytes();
  if (device_bytes < kFirstCheckpointOffset) {
    return refuse(EINVAL, "the device has only " + std::to_string(device_bytes) +
                              " bytes, too few for the vlunfs superblocks at bytes 0 and 4096");
  }

  // ---- The superblocks ----
  Copy copies[2];
  for (int i = 0; i < 2; i++) {
    std::vector<std::byte> block(kSuperblockBytes);
    if (auto ec = device.read(kSuperblockOffset[i], block)) {
      copies[i].decoded = {SuperblockState::corrupt, {}, Error(ec, "read error: " + ec.message())};
      copies[i].read_error = true;
    } else {
      copies[i].decoded = decode_superblock(block, i, device_bytes);
    }
  }
  if (copies[0].decoded.state == SuperblockState::absent && copies[1].decoded.state == SuperblockState::absent) {
    return refuse(EINVAL, "no vlunfs superblock at byte 0 or byte 4096: the device is not formatted with vlunfs");
  }
  for (int i = 0; i < 2; i++) {
    if (copies[i].decoded.state != SuperblockState::valid) {
      rep.problems.push_back({OpenProblemPart::superblock_copy, copy_name(i) + ": " + copies[i].decoded.error.message});
    }
  }

  // ---- The newest superblock whose checkpoint is intact ----
  std::vector<int> candidates;
  for (int i = 0; i < 2; i++) {
    if (copies[i].decoded.state == SuperblockState::valid) candidates.push_back(i);
  }
  std::sort(candidates.begin(), candidates.end(),
            [&](int a, int b) {
              return copies[a].decoded.superblock.generation > copies[b].decoded.superblock.generation;
            });
  bool io_error = copies[0].read_error || copies[1].read_error;
  int chosen = -1;
  Namespace ns;
  for (int i : candidates) {
    const Superblock& sb = copies[i].decoded.superblock;
    const std::string what = "checkpoint of generation " + std::to_string(sb.generation) + " in slot " +
                             std::to_string(sb.generation % 2) + " at byte " + std::to_string(sb.checkpoint_offset);
    // The length was checked against the slot size when the superblock was decoded.
    std::vector<std::byte> image(static_cast<size_t>(sb.checkpoint_length));
    if (auto ec = device.read(sb.checkpoint_offset, image)) {
      io_error = true;
      rep.problems.push_back({OpenProblemPart::checkpoint, what + ": read error: " + ec.message()});
      continue;
    }
    const uint32_t crc = crc32c(image.data(), image.size());
    if (crc != sb.checkpoint_crc) {
      rep.problems.push_back({OpenProblemPart::checkpoint, what + ": bad CRC32C (superblock says " +
                                                               hex32(sb.checkpoint_crc) + ", computed " + hex32(crc) + ")"});
      continue;
    }
    auto decoded = decode_checkpoint(image, sb.generation, sb.journal_first_seq);
    if (!decoded) {
      rep.problems.push_back({OpenProblemPart::checkpoint, decoded.error().within(what).message});
      continue;
    }
    ns = std::move(decoded).value();
    chosen = i;
    break;
  }
  if (chosen < 0) {
    std::string message = "no usable superblock and checkpoint";
    for (const OpenProblem& problem : rep.problems) message += "; " + problem.text;
    return refuse(io_error ? EIO : EINVAL, std::move(message));
  }
  const int other = 1 - chosen;
  const Superblock& sb = copies[chosen].decoded.superblock;
  const Geometry& g = sb.geometry;
  rep.superblock_used = chosen;
  rep.generation = sb.generation;
  rep.fell_back = candidates.front() != chosen || copies[other].decoded.state != SuperblockState::valid;
  if (copies[other].decoded.state == SuperblockState::valid &&
      !std::equal(std::begin(g.uuid), std::end(g.uuid), std::begin(copies[other].decoded.superblock.geometry.uuid))) {
    rep.problems.push_back(
        {OpenProblemPart::uuid, "the two superblocks carry different file system UUIDs; using " + copy_name(chosen)});
  }

  // ---- Journal replay ----
  const uint32_t seed = journal_seed(g.uuid, sb.journal_epoch, sb.journal_first_seq);
  JournalReader reader(device, g.journal_offset, g.journal_bytes, sb.journal_epoch, sb.journal_first_seq, seed);
  uint64_t end = 0;
  uint64_t next_seq = sb.journal_first_seq;
  uint32_t chain = seed;
  JournalEntry entry;
  for (;;) {
    if (!reader.next(&entry)) {
      if (reader.io_error()) return refuse(EIO, "reading the journal: " + reader.stop_reason());
      rep.journal_stop_reason = reader.stop_reason();
      break;
    }
    const std::string what = "journal record " + std::to_string(entry.seq) + " at journal offset " +
                             std::to_string(entry.offset) + " (device byte " +
                             std::to_string(g.journal_offset + entry.offset) + ")";
    auto decoded = decode_record(entry.type, entry.payload);
    if (!decoded) {
      rep.journal_stop_reason = decoded.error().within(what + " cannot be decoded").message;
      rep.problems.push_back({OpenProblemPart::journal, rep.journal_stop_reason});
      break;
    }
    const Record record = std::move(decoded).value();
    std::error_code ec = check_limits(g, record);
    if (!ec) ec = meta::apply(ns, record);
    if (ec) {
      rep.journal_stop_reason = what + " does not apply: " + ec.message();
      rep.problems.push_back({OpenProblemPart::journal, rep.journal_stop_reason});
      break;
    }
    rep.records_replayed++;
    end = entry.end;
    next_seq = entry.seq + 1;
    chain = entry.header_crc;
  }

  // The next record goes right after the last one replayed; the block it starts in is rewritten
  // whole, so its valid beginning is needed as it is on the device.
  std::vector<std::byte> tail(static_cast<size_t>(end % kMetaBlock));
  if (!tail.empty()) {
    if (auto ec = device.read(g.journal_offset + end - tail.size(), tail)) {
      return refuse(EIO, "reading the journal's last block at device byte " +
                             std::to_string(g.journal_offset + end - tail.size()) + ": " + ec.message());
    }
  }

  // The next checkpoint goes into the slot and copy this superblock does not use, and must get a
  // generation no superblock on the device has had: after a fallback, the other copy may hold a
  // newer (valid but useless) generation whose journal records are still on the device.
  uint64_t next_generation = sb.generation + 1;
  if (copies[other].decoded.state == SuperblockState::valid) {
    next_generation = std::max(next_generation, copies[other].decoded.superblock.generation + 1);
  }
  if (next_generation % 2 == sb.generation % 2) next_generation++;

  auto store = std::make_unique<MetaStoreImpl>(device, options.read_only, sb, next_generation, std::move(ns));
  store->journal().start(sb.journal_epoch, next_seq, chain, end, std::move(tail));
  if (!options.read_only && g.version < kFormatVersion) {
    // An older version is rewritten as this one before anything is appended, so that no record
    // of a newer type ever sits in an older version's journal (docs/format.md, "Versions").
    if (auto ec = store->checkpoint()) {
      return Error(ec, "rewriting the format version " + std::to_string(g.version) + " metadata as version " +
                              std::to_string(kFormatVersion) + " failed: " + ec.message());
    }
  }
  return std::unique_ptr<MetaStore>(std::move(store));
}

}  // namespace vlunfs::meta
