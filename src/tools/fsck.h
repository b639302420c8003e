// fsck: checks an unmounted vlunfs device.
//
// The metadata: both superblock copies, both checkpoint slots (CRC32C, fields, a consistent tree),
// and the journal (replayed up to its first invalid record; a record that is intact but does not
// apply is an error). The namespace that results: every LXT entry inside the data area and well
// formed, a chunk named by several entries only when all of them are read-only (the copy-on-write
// convention: a shared chunk is mapped without the W bit), at most 256 owners per chunk (the
// hardware's 8-bit clone counter), sizes within the provisioned chunks, link counts, directory
// parents, and a tree in which every inode is reachable from the root. The data area's last chunk
// is the zero chunk: thin vLUNs map their unwritten chunks to it, read-only, any number of times.
//
// There is no allocation bitmap to check: the allocator is rebuilt from the chunk maps at every
// mount (design decision 3), so a chunk is free exactly when no map names it, the free count is
// the data area's chunks minus the mapped ones, and the only chunks that can "leak" are those of
// orphans (unlinked while open when the daemon stopped); the next mount or a repair frees them.
//
// A thin vLUN's LXT may be longer than the data area has chunks (its unwritten chunks all map the
// zero chunk): the bound on any LXT is meta::max_lxt_entries(), the one a resize and journal
// replay enforce.
//
// Repairs come in two kinds, as e2fsck's: those preening makes (-p: they restore what the rest of
// the metadata says, or what the next mount would do anyway) and those only -y makes (they remove
// or add a name: a directory entry naming a missing inode, an unnamed inode into /lost+found).
#pragma once

#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/namespace.h"
#include "store/rbd/rbd_store.h"
#include "vlunfs/store.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vlunfs::fsck {

// Exit codes, as fsck(8) defines them (and e2fsck uses them). 2, "corrected, reboot needed", is
// never used: a vlunfs device is never checked while mounted.
inline constexpr int EXIT_CLEAN = 0;
inline constexpr int EXIT_FIXED = 1;
inline constexpr int EXIT_ERRORS_LEFT = 4;
inline constexpr int EXIT_OPERATIONAL = 8;
inline constexpr int EXIT_USAGE = 16;
inline constexpr int EXIT_CANCELLED = 32;

// Which repairs a check makes: none (-n), the safe ones (-p, preen), or every one fsck knows (-y).
enum class Repair { kNone, kPreen, kAll };

// Which check a finding comes from.
enum class Check {
  device,           // opening, reading or writing the device
  superblock,       // a superblock copy, or the two copies against each other
  checkpoint,       // a checkpoint slot
  journal,          // journal replay
  geometry,         // the layout a mount needs
  inode_fields,     // inode numbers and the fields of each type; next_ino
  directory_entries,
  unnamed_inodes,   // inodes with links but no name (/lost+found)
  tree,             // reachability from the root, directory parents
  link_counts,
  chunk_maps,       // sizes, LXT entries, the data area's bounds, the zero chunk
  sharing,          // chunks named by several entries: read-only, at most 256 owners
  orphans,
  share_reserve,
  preen,            // preening stopped: a problem needs -y
};

enum class Severity {
  note,      // worth knowing, not wrong (e.g. the journal was replayed)
  error,     // what is wrong (left as is)
  repaired,  // what a repair changed
};

// What repairs an error: nothing fsck does, -p (and -y), or only -y (it removes or adds a name).
enum class Fix { none, preen, yes };

struct Finding {
  Check check;
  Severity severity;
  std::string text;  // as the CLI prints it after "error: ", "fixed: " or "note: "
  // About the metadata as stored (a superblock copy, a checkpoint slot, the journal) rather than
  // the namespace in use: a fresh checkpoint of the namespace supersedes it.
  bool copy = false;
  Fix fix = Fix::none;
};

struct Report {
  std::vector<Finding> findings;  // in the order found
  uint64_t inodes = 0, files = 0, directories = 0, symlinks = 0, orphans = 0;
  // Chunks of the data area: mapped by files, mapped by more than one entry (copy-on-write shares),
  // and free (mapped by none; the zero chunk, the data area's last, is never free).
  uint64_t chunks_total = 0, chunks_used = 0, chunks_shared = 0, chunks_free = 0;
  uint64_t zero_maps = 0;  // LXT entries of thin vLUNs mapping the zero chunk (unwritten chunks)
  // The share reserve: chunks thick, writable vLUNs may still need to break their shares; the
  // free chunks must cover it (docs/format.md, "The share reserve").
  uint64_t chunks_reserved = 0;
  int exit_code = EXIT_CLEAN;

  // The texts of the findings of one severity, in order.
  std::vector<std::string> texts(Severity severity) const;
  std::vector<std::string> errors() const { return texts(Severity::error); }
  std::vector<std::string> repairs() const { return texts(Severity::repaired); }
  std::vector<std::string> notes() const { return texts(Severity::note); }
  bool has_errors() const { return count(Severity::error) > 0; }
  size_t count(Severity severity) const;
  // The findings of one check and severity.
  std::vector<Finding> of(Check check, Severity severity) const;
};

// Called now and then during a long check with (work done, total work).
using Progress = std::function<void(uint64_t done, uint64_t total)>;

// Checks a namespace against a geometry. With repair, fixes in place what can be fixed without
// guessing: link counts, directory parents, next_ino, directory entries naming missing inodes
// (removed), inodes with links but no name (linked into /lost+found), orphans (removed; the chunks
// that no other map names are listed in *freed, so that the caller can zero them).
// Preen (Repair::kPreen) makes only the repairs that change no name.
Report check_namespace(meta::Namespace& ns, const meta::Geometry& geometry, Repair mode,
                       std::vector<uint64_t>* freed = nullptr, const Progress& progress = {});
// repair = Repair::kAll, else Repair::kNone.
Report check_namespace(meta::Namespace& ns, const meta::Geometry& geometry, bool repair,
                       std::vector<uint64_t>* freed = nullptr, const Progress& progress = {});

struct Options {
  bool repair = false;    // every repair (-y); wins over preen
  bool preen = false;     // only the safe repairs (-p); a problem that needs -y leaves all unchanged
  bool progress = false;  // a progress line on stderr
  store::CephClientOptions ceph;  // for an rbd:POOL/IMAGE device (-o ceph_conf=,ceph_id=)
  Repair mode() const { return repair ? Repair::kAll : preen ? Repair::kPreen : Repair::kNone; }
};

// Checks (and with repair, repairs) the vlunfs metadata on an open store; `name` is for messages.
Report check_device(store::BlockStore& device, const std::string& name, const Options& options);

// Opens the device (refusing a mounted one), inspects both superblocks and checkpoints, loads its
// metadata, checks it, and with repair zeroes the chunks of removed orphans and writes a fresh
// checkpoint (which also rewrites a damaged superblock copy or checkpoint slot).
Report run(const std::string& device, const Options& options);

}  // namespace vlunfs::fsck
