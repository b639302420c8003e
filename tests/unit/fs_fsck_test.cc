// fsck: one test per defect it detects, on namespaces damaged by hand (check_namespace), and on
// image files damaged byte by byte (run: superblocks, checkpoint slots, orphans, a mounted image).
#include "tools/fsck.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"
#include "vlunfs/sislite.h"
#include "vlunfs/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace vlunfs::fsck {
namespace {

using meta::Inode;
using meta::Namespace;

constexpr unsigned kShift = 4;  // 64 KiB chunks
constexpr uint64_t kChunks = 100;

meta::Geometry geometry() {
  meta::Geometry g;
  g.version = 1;
  g.block_size = 4096;
  g.chunk_shift = kShift;
  g.data_offset = 1 << 20;
  g.data_bytes = kChunks * g.chunk_bytes();
  g.device_bytes = g.data_offset + g.data_bytes;
  return g;
}

uint64_t rw(uint64_t aun) { return sisl::make_lxt_entry(aun, 0, sisl::LXT_PERM_READ | sisl::LXT_PERM_WRITE, 0x3); }
uint64_t ro(uint64_t aun) { return sisl::make_lxt_entry(aun, 0, sisl::LXT_PERM_READ, 0x3); }

// A small, consistent namespace: /a (file, 2 chunks), /d (dir), /d/b (file, 1 chunk), /d/e (dir),
// /l (symlink), /h (a second name of /a).
class FsckNamespace : public ::testing::Test {
 protected:
  void SetUp() override {
    ns = meta::make_empty_namespace(1000);
    add_dir(meta::ROOT_INO, "d", 3);
    add_dir(3, "e", 5);
    add_file(meta::ROOT_INO, "a", 2, {rw(0), rw(1)}, 2 * geometry().chunk_bytes() - 7);
    add_file(3, "b", 4, {rw(2)}, 100);
    Inode l;
    l.ino = 6;
    l.mode = S_IFLNK | 0777;
    l.nlink = 1;
    l.symlink = "a";
    ns.inodes[6] = l;
    ns.find(meta::ROOT_INO)->entries["l"] = 6;
    ns.find(meta::ROOT_INO)->entries["h"] = 2;
    ns.find(2)->nlink = 2;
    ns.next_ino = 7;
  }
  void add_dir(uint64_t parent, const std::string& name, uint64_t ino) {
    Inode d;
    d.ino = ino;
    d.mode = S_IFDIR | 0755;
    d.nlink = 2;
    d.parent = parent;
    ns.inodes[ino] = d;
    ns.find(parent)->entries[name] = ino;
    ns.find(parent)->nlink++;
  }
  void add_file(uint64_t parent, const std::string& name, uint64_t ino, std::vector<uint64_t> lxt, uint64_t size) {
    Inode f;
    f.ino = ino;
    f.mode = S_IFREG | 0644;
    f.nlink = 1;
    f.lxt = std::move(lxt);
    f.size = size;
    ns.inodes[ino] = f;
    if (parent) ns.find(parent)->entries[name] = ino;
  }
  Report check(bool repair = false, std::vector<uint64_t>* freed = nullptr) {
    return check_namespace(ns, geometry(), repair, freed);
  }
  static bool mentions(const std::vector<std::string>& lines, const std::string& text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }
  static std::string all(const Report& r) {
    std::string s;
    for (const auto& e : r.errors()) s += "error: " + e + "\n";
    for (const auto& e : r.repairs()) s += "fixed: " + e + "\n";
    for (const auto& e : r.notes()) s += "note: " + e + "\n";
    return s;
  }
  Namespace ns;
};

TEST_F(FsckNamespace, ConsistentNamespaceIsCleanWithExactCounts) {
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.inodes, 6u);
  EXPECT_EQ(r.files, 2u);
  EXPECT_EQ(r.directories, 3u);
  EXPECT_EQ(r.symlinks, 1u);
  EXPECT_EQ(r.chunks_total, kChunks);
  EXPECT_EQ(r.chunks_used, 3u);
  EXPECT_EQ(r.chunks_free, kChunks - 1 - 3) << "the zero chunk is never free";
  EXPECT_EQ(r.chunks_shared, 0u);
}

TEST_F(FsckNamespace, SpecialFilesAreCleanAndOnlyDeviceNodesMayHaveADeviceNumber) {
  for (uint32_t type : {S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK}) {
    Inode node;
    node.ino = ns.next_ino++;
    node.mode = type | 0600;
    node.nlink = 1;
    node.rdev = (type == S_IFCHR || type == S_IFBLK) ? 0x0103 : 0;
    ns.inodes[node.ino] = node;
    ns.find(meta::ROOT_INO)->entries["node" + std::to_string(node.ino)] = node.ino;
  }
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.inodes, 10u);
  ns.find(7)->rdev = 5;  // the FIFO
  r = check();
  EXPECT_NE(r.exit_code, EXIT_CLEAN);
  EXPECT_TRUE(mentions(r.errors(), "device number")) << all(r);
}

TEST_F(FsckNamespace, MissingRootIsAnErrorLeft) {
  ns.inodes.erase(meta::ROOT_INO);
  Report r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "root directory"));
}

TEST_F(FsckNamespace, LxtEntryOutsideTheDataAreaIsAnError) {
  ns.find(2)->lxt[1] = rw(kChunks + 5);
  Report r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 2 chunk 1: maps physical chunk 105 outside the data area")) << all(r);
}

// Findings are values: which check found a defect, and what repairs it, without reading the text.
TEST_F(FsckNamespace, FindingsSayWhichCheckFoundThemAndWhatRepairsThem) {
  ns.find(2)->lxt[1] = rw(kChunks + 5);  // outside the data area: nothing repairs it
  ns.find(2)->nlink = 5;                 // -p repairs it
  ns.find(3)->entries["ghost"] = 99;     // only -y repairs it
  ns.next_ino = 100;
  Report r = check();
  ASSERT_EQ(r.of(Check::chunk_maps, Severity::error).size(), 1u) << all(r);
  EXPECT_EQ(r.of(Check::chunk_maps, Severity::error)[0].fix, Fix::none);
  EXPECT_FALSE(r.of(Check::chunk_maps, Severity::error)[0].copy);
  ASSERT_EQ(r.of(Check::link_counts, Severity::error).size(), 1u) << all(r);
  EXPECT_EQ(r.of(Check::link_counts, Severity::error)[0].fix, Fix::preen);
  ASSERT_EQ(r.of(Check::directory_entries, Severity::error).size(), 1u) << all(r);
  EXPECT_EQ(r.of(Check::directory_entries, Severity::error)[0].fix, Fix::yes);
  EXPECT_EQ(r.count(Severity::error), 3u) << all(r);

  r = check(true);
  EXPECT_EQ(r.of(Check::link_counts, Severity::repaired).size(), 1u) << all(r);
  EXPECT_EQ(r.of(Check::directory_entries, Severity::repaired).size(), 1u) << all(r);
  EXPECT_EQ(r.of(Check::chunk_maps, Severity::error).size(), 1u) << all(r);
}

TEST_F(FsckNamespace, MalformedLxtEntriesAreErrors) {
  ns.find(2)->lxt[0] = sisl::make_lxt_entry(0, 0, sisl::LXT_PERM_WRITE, 0x3);
  ns.find(2)->lxt[1] = sisl::make_lxt_entry(1, 0, sisl::LXT_PERM_READ, 0);
  ns.find(4)->lxt[0] = rw(2) | 0x80;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 2 chunk 0: LXT entry without read permission")) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "inode 2 chunk 1: LXT entry with no port")) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "inode 4 chunk 0: LXT entry with reserved bits")) << all(r);
}

TEST_F(FsckNamespace, ChunkOwnedTwiceWritableIsAnError) {
  ns.find(4)->lxt[0] = rw(1);  // /d/b and /a both write chunk 1
  Report r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "chunk 1: shared by 2 map entries")) << all(r);
}

TEST_F(FsckNamespace, ChunkSharedReadOnlyByAllOwnersIsACleanCopyOnWriteShare) {
  ns.find(2)->lxt[1] = ro(1);
  ns.find(4)->lxt[0] = ro(1);
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.chunks_shared, 1u);
  EXPECT_EQ(r.chunks_used, 2u);
  EXPECT_EQ(r.chunks_free, kChunks - 1 - 2);
}

TEST_F(FsckNamespace, ChunkWithMoreThan256OwnersIsAnError) {
  // Three clones mapping chunk 7 at every index: 3 x 86 = 258 owners.
  for (uint64_t i = 0; i < 3; i++) add_file(meta::ROOT_INO, "c" + std::to_string(i), 7 + i, std::vector<uint64_t>(86, ro(7)), 0);
  // Thin: thick owners would need more chunks to break the shares than the pool has (the share reserve).
  for (uint64_t ino : {7, 8, 9}) ns.find(ino)->flags = meta::INODE_FLAG_THIN;
  ns.next_ino = 10;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "chunk 7: 258 owners")) << all(r);
  ns.find(9)->lxt.resize(84);
  r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
}

TEST_F(FsckNamespace, SharesThatThickVlunsCouldNotBreakForLackOfFreeChunksAreAnError) {
  // Two thick files sharing 60 chunks (one chunk each to break, one owner keeps the original) and a
  // thick file mapping the zero chunk 10 times: 70 reserved, with 100 - 1 - 63 = 36 free.
  std::vector<uint64_t> shared;
  for (uint64_t aun = 10; aun < 70; ++aun) shared.push_back(ro(aun));
  add_file(meta::ROOT_INO, "x", 7, shared, 0);
  add_file(meta::ROOT_INO, "y", 8, shared, 0);
  add_file(meta::ROOT_INO, "z", 9, std::vector<uint64_t>(10, ro(kChunks - 1)), 0);
  ns.next_ino = 10;
  Report r = check();
  EXPECT_EQ(r.chunks_reserved, 70u);
  EXPECT_EQ(r.chunks_free, 36u);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "thick vLUNs may need 70 chunks to break their shares, but only 36 are free")) << all(r);
  // A snapshot of x instead of a writable copy, a thin z: only x holds a reserve, for 60 chunks.
  ns.find(8)->flags = meta::INODE_FLAG_READONLY;
  ns.find(9)->flags = meta::INODE_FLAG_THIN;
  r = check();
  EXPECT_EQ(r.chunks_reserved, 60u);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT) << all(r);
  // Half of the shares gone: 30 reserved, 36 free.
  ns.find(8)->lxt.resize(30);
  r = check();
  EXPECT_EQ(r.chunks_reserved, 30u);
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
}

TEST_F(FsckNamespace, ZeroChunkIsMappedReadOnlyByAnyNumberOfThinVluns) {
  add_file(meta::ROOT_INO, "thin", 7, std::vector<uint64_t>(kChunks - 1, ro(kChunks - 1)), 5000);
  add_file(meta::ROOT_INO, "thin2", 8, std::vector<uint64_t>(kChunks - 1, ro(kChunks - 1)), 5000);
  add_file(meta::ROOT_INO, "thin3", 9, std::vector<uint64_t>(kChunks - 1, ro(kChunks - 1)), 5000);
  for (uint64_t ino : {7, 8, 9}) ns.find(ino)->flags = meta::INODE_FLAG_THIN;
  ns.next_ino = 10;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.zero_maps, 3 * (kChunks - 1));
  EXPECT_EQ(r.chunks_used, 3u);
  ns.find(8)->lxt[4] = rw(kChunks - 1);
  r = check();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 8 chunk 4: maps the zero chunk 99 writable")) << all(r);
}

// The measured failure: a healthy thin vLUN promising four times the flash was "more than the data
// area's chunks", an error no repair could clear. The bound is the overcommit limit that a resize
// and journal replay enforce (meta::max_lxt_entries).
TEST_F(FsckNamespace, ThinVlunLongerThanTheDataAreaIsClean) {
  std::vector<uint64_t> lxt(4 * kChunks, ro(kChunks - 1));
  lxt[0] = rw(10);  // two chunks written, the rest unwritten
  lxt[399] = rw(11);
  add_file(meta::ROOT_INO, "thin", 7, lxt, 4 * kChunks * geometry().chunk_bytes());
  ns.find(7)->flags = meta::INODE_FLAG_THIN;
  ns.next_ino = 8;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.zero_maps, 4 * kChunks - 2);
  EXPECT_EQ(r.chunks_used, 3u + 2u);
  EXPECT_EQ(check(true).exit_code, EXIT_CLEAN) << "a repair has nothing to do either";
}

TEST_F(FsckNamespace, SnapshotAndCloneOfAThinVlunLongerThanTheDataAreaAreClean) {
  std::vector<uint64_t> lxt(3 * kChunks, ro(kChunks - 1));
  lxt[5] = ro(10);  // written before the clone and the snapshot: shared, read-only in all three
  add_file(meta::ROOT_INO, "thin", 7, lxt, lxt.size() * geometry().chunk_bytes());
  add_file(meta::ROOT_INO, "snap", 8, lxt, lxt.size() * geometry().chunk_bytes());
  lxt[6] = rw(12);  // the clone wrote a chunk of its own since
  add_file(meta::ROOT_INO, "clone", 9, lxt, lxt.size() * geometry().chunk_bytes());
  ns.find(7)->flags = meta::INODE_FLAG_THIN;
  ns.find(8)->flags = meta::INODE_FLAG_THIN | meta::INODE_FLAG_READONLY;
  ns.find(9)->flags = meta::INODE_FLAG_THIN;
  ns.next_ino = 10;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.chunks_shared, 1u);
  EXPECT_EQ(r.zero_maps, 3 * (3 * kChunks - 1) - 1);
}

TEST_F(FsckNamespace, LxtLongerThanTheOvercommitLimitIsAnError) {
  const uint64_t limit = meta::max_lxt_entries(geometry());
  ASSERT_EQ(limit, kChunks * meta::MAX_OVERCOMMIT);
  add_file(meta::ROOT_INO, "huge", 7, std::vector<uint64_t>(limit + 1, ro(kChunks - 1)), 1);
  ns.find(7)->flags = meta::INODE_FLAG_THIN;
  ns.next_ino = 8;
  Report r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 7: " + std::to_string(limit + 1) + " chunks, more than the " +
                                     std::to_string(limit) + " a vLUN may have")) << all(r);
  ns.find(7)->lxt.resize(limit);
  EXPECT_EQ(check().exit_code, EXIT_CLEAN);
}

TEST_F(FsckNamespace, ThinVlunMappingAChunkOutsideTheDataAreaIsStillAnError) {
  std::vector<uint64_t> lxt(4 * kChunks, ro(kChunks - 1));
  lxt[250] = rw(kChunks + 1);
  add_file(meta::ROOT_INO, "thin", 7, lxt, 1);
  ns.find(7)->flags = meta::INODE_FLAG_THIN;
  ns.next_ino = 8;
  Report r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 7 chunk 250: maps physical chunk 101 outside the data area")) << all(r);
}

TEST_F(FsckNamespace, SizeBeyondTheProvisionedChunksIsAnError) {
  ns.find(4)->size = geometry().chunk_bytes() + 1;
  Report r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 4: size 65537 is beyond its 1 chunks")) << all(r);
}

TEST_F(FsckNamespace, WrongFileLinkCountIsRepaired) {
  ns.find(2)->nlink = 5;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 2: link count is 5, but 2 names point to it")) << all(r);
  r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_FIXED);
  EXPECT_TRUE(mentions(r.repairs(), "set to 2"));
  EXPECT_EQ(ns.find(2)->nlink, 2u);
  EXPECT_EQ(check().exit_code, EXIT_CLEAN);
}

TEST_F(FsckNamespace, WrongDirectoryLinkCountIsRepaired) {
  ns.find(3)->nlink = 2;  // has one subdirectory: 3
  ns.find(meta::ROOT_INO)->nlink = 9;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 3: directory link count is 2, should be 3")) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "inode 1: directory link count is 9, should be 3")) << all(r);
  EXPECT_EQ(check(true).exit_code, EXIT_FIXED);
  EXPECT_EQ(check().exit_code, EXIT_CLEAN);
}

TEST_F(FsckNamespace, WrongParentIsRepaired) {
  ns.find(5)->parent = meta::ROOT_INO;
  Report r = check();
  EXPECT_TRUE(mentions(r.errors(), "inode 5: '..' points to 1 but the directory is named in 3")) << all(r);
  EXPECT_EQ(check(true).exit_code, EXIT_FIXED);
  EXPECT_EQ(ns.find(5)->parent, 3u);
  EXPECT_EQ(check().exit_code, EXIT_CLEAN);
}

TEST_F(FsckNamespace, EntryNamingAMissingInodeIsRemoved) {
  ns.find(3)->entries["ghost"] = 99;
  ns.next_ino = 100;
  Report r = check();
  EXPECT_TRUE(mentions(r.errors(), "entry 'ghost' names missing inode 99")) << all(r);
  EXPECT_EQ(check(true).exit_code, EXIT_FIXED);
  EXPECT_FALSE(ns.find(3)->entries.count("ghost"));
  EXPECT_EQ(check().exit_code, EXIT_CLEAN);
}

TEST_F(FsckNamespace, InodeWithLinksButNoNameGoesToLostAndFound) {
  add_file(0, "", 7, {rw(9)}, 10);  // nlink 1, no directory names it
  ns.next_ino = 8;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 7: link count 1 but no directory names it")) << all(r);
  r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_FIXED) << all(r);
  const Inode* lf = ns.find(ns.find(meta::ROOT_INO)->entries.at("lost+found"));
  ASSERT_NE(lf, nullptr);
  EXPECT_EQ(lf->entries.at("#7"), 7u);
  EXPECT_EQ(ns.find(7)->lxt.size(), 1u) << "its data is kept";
  r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
}

TEST_F(FsckNamespace, DirectoriesCutOffFromTheRootAreAnErrorLeft) {
  // /d/e taken out of /d and made a loop of its own: e -> f -> e.
  ns.find(3)->entries.erase("e");
  ns.find(3)->nlink = 2;
  add_dir(5, "f", 7);
  ns.find(7)->entries["e"] = 5;
  ns.find(5)->parent = 7;
  ns.find(7)->nlink = 3;
  ns.next_ino = 8;
  Report r = check(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT);
  EXPECT_TRUE(mentions(r.errors(), "inode 5: directory not reachable from the root")) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "inode 7: directory not reachable from the root")) << all(r);
}

TEST_F(FsckNamespace, InodeNumberNotBelowNextInoIsRepaired) {
  ns.next_ino = 4;
  Report r = check();
  EXPECT_TRUE(mentions(r.errors(), "next inode number 4 is not above the highest inode 6")) << all(r);
  EXPECT_EQ(check(true).exit_code, EXIT_FIXED);
  EXPECT_EQ(ns.next_ino, 7u);
}

TEST_F(FsckNamespace, OrphanIsANoteAndRepairFreesOnlyItsUnsharedChunks) {
  // Unlinked while open: no name, nlink 0, one chunk of its own and one shared read-only with /d/b.
  add_file(0, "", 7, {rw(20), ro(2)}, 10);
  ns.find(7)->nlink = 0;
  ns.find(4)->lxt[0] = ro(2);
  ns.next_ino = 8;
  Report r = check();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.orphans, 1u);
  EXPECT_TRUE(mentions(r.notes(), "inode 7: orphan")) << all(r);
  std::vector<uint64_t> freed;
  r = check(true, &freed);
  EXPECT_EQ(r.exit_code, EXIT_FIXED) << all(r);
  EXPECT_EQ(freed, std::vector<uint64_t>{20}) << "chunk 2 still belongs to /d/b and must not be zeroed";
  EXPECT_EQ(ns.find(7), nullptr);
  EXPECT_EQ(r.chunks_used, 3u);
  EXPECT_EQ(r.chunks_free, kChunks - 1 - 3) << "the zero chunk is never free";
}

// Preen (-p) makes the repairs that restore what the rest of the metadata says; one that removes or
// adds a name is left for -y, and said so.
TEST_F(FsckNamespace, PreenRepairsLinkCountsParentsAndOrphans) {
  ns.find(2)->nlink = 5;
  ns.find(5)->parent = meta::ROOT_INO;
  add_file(0, "", 7, {rw(20)}, 10);
  ns.find(7)->nlink = 0;  // an orphan
  ns.next_ino = 8;
  std::vector<uint64_t> freed;
  Report r = check_namespace(ns, geometry(), Repair::kPreen, &freed);
  EXPECT_EQ(r.exit_code, EXIT_FIXED) << all(r);
  EXPECT_EQ(ns.find(2)->nlink, 2u);
  EXPECT_EQ(ns.find(5)->parent, 3u);
  EXPECT_EQ(freed, std::vector<uint64_t>{20});
  EXPECT_EQ(check().exit_code, EXIT_CLEAN) << all(check());
}

TEST_F(FsckNamespace, PreenLeavesNameChangesToRepairEverything) {
  ns.find(3)->entries["ghost"] = 99;
  add_file(0, "", 7, {rw(9)}, 10);  // nlink 1, no name
  ns.next_ino = 100;
  Report r = check_namespace(ns, geometry(), Repair::kPreen);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "entry 'ghost' names missing inode 99 (not repaired when preening: fsck -y removes the entry)")) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "inode 7: link count 1 but no directory names it (fsck -y links it into /lost+found)")) << all(r);
  EXPECT_TRUE(ns.find(3)->entries.count("ghost")) << "preen removes no name";
  EXPECT_FALSE(ns.find(meta::ROOT_INO)->entries.count("lost+found")) << "preen adds no name";
  r = check_namespace(ns, geometry(), Repair::kAll);
  EXPECT_EQ(r.exit_code, EXIT_FIXED) << all(r);
  EXPECT_EQ(check().exit_code, EXIT_CLEAN);
}

TEST_F(FsckNamespace, NonFileWithAChunkMapIsAnError) {
  ns.find(6)->lxt = {rw(30)};
  Report r = check();
  EXPECT_TRUE(mentions(r.errors(), "inode 6: not a regular file but has a chunk map")) << all(r);
}

TEST_F(FsckNamespace, ProgressReachesTheTotal) {
  uint64_t last_done = 0, last_total = 1;
  check_namespace(ns, geometry(), false, nullptr, [&](uint64_t done, uint64_t total) {
    last_done = done;
    last_total = total;
  });
  EXPECT_EQ(last_done, last_total);
  EXPECT_GT(last_total, 0u);
}

// ---- fsck::run over image files ----

class FsckImage : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vlunfs-fsck-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/flash.img";
    store::FileStoreOptions fo;
    fo.create_size = 64 << 20;
    auto dev = store::open_file_store(path_, fo);
    ASSERT_TRUE(dev);
    meta::FormatOptions opts;
    opts.chunk_shift = kShift;
    opts.checkpoint_bytes = 256 << 10;
    opts.journal_bytes = 256 << 10;
    auto g = meta::format(*dev.value(), opts);
    ASSERT_TRUE(g);
    geometry_ = g.value();
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  // Opens the image's metadata for changes; the store must outlive the MetaStore.
  struct Open {
    std::unique_ptr<store::BlockStore> dev;
    std::unique_ptr<meta::MetaStore> meta;
  };
  Open open() {
    Open o;
    auto dev = store::open_file_store(path_, {});
    EXPECT_TRUE(dev);
    o.dev = std::move(dev).value();
    auto m = meta::MetaStore::open(*o.dev, {});
    EXPECT_TRUE(m) << m.error().message;
    o.meta = std::move(m).value();
    return o;
  }

  // A file /f with one chunk, and a directory; then a checkpoint (generation 2), a second one
  // (generation 3), and more journal records, so that both slots hold real states.
  void populate() {
    Open o = open();
    auto append = [&](const meta::Record& rec) {
      auto seq = o.meta->append(rec);
      ASSERT_TRUE(seq) << seq.error().message();
      ASSERT_FALSE(o.meta->wait_durable(seq.value()));
    };
    append(meta::CreateRecord{meta::ROOT_INO, "f", 2, S_IFREG | 0644, 0, 0, 1, ""});
    append(meta::ResizeRecord{2, 1000, 1, 0, {rw(3)}, 2});
    ASSERT_FALSE(o.meta->checkpoint());
    append(meta::CreateRecord{meta::ROOT_INO, "d", 3, S_IFDIR | 0755, 0, 0, 3, ""});
    ASSERT_FALSE(o.meta->checkpoint());
    append(meta::CreateRecord{3, "g", 4, S_IFREG | 0644, 0, 0, 4, ""});
  }

  void write_bytes(uint64_t offset, const std::string& bytes) {
    int fd = ::open(path_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
    close(fd);
  }

  Report fsck(bool repair = false) {
    Options o;
    o.repair = repair;
    return run(path_, o);
  }
  static std::string all(const Report& r) {
    std::string s;
    for (const auto& e : r.errors()) s += "error: " + e + "\n";
    for (const auto& e : r.repairs()) s += "fixed: " + e + "\n";
    for (const auto& e : r.notes()) s += "note: " + e + "\n";
    return s;
  }
  static bool mentions(const std::vector<std::string>& lines, const std::string& text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }

  std::string dir_, path_;
  meta::Geometry geometry_;
};

TEST_F(FsckImage, FreshAndPopulatedImagesAreClean) {
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  populate();
  r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.files, 2u);
  EXPECT_EQ(r.directories, 2u);
  EXPECT_EQ(r.chunks_used, 1u);
  EXPECT_TRUE(mentions(r.notes(), "1 journal records replayed")) << all(r);
}

// A thin vLUN four times the data area, as the journal and a checkpoint hold it.
TEST_F(FsckImage, ThinVlunLongerThanTheDataAreaChecksClean) {
  const uint64_t zero = geometry_.data_chunks() - 1;
  const uint32_t chunks = static_cast<uint32_t>(4 * geometry_.data_chunks());
  {
    Open o = open();
    ASSERT_TRUE(o.meta->append(meta::CreateRecord{meta::ROOT_INO, "thin", 2, S_IFREG | 0644, 0, 0, 1, ""}));
    meta::SetAttrRecord thin;
    thin.ino = 2;
    thin.valid = meta::SET_FLAGS;
    thin.flags = meta::INODE_FLAG_THIN;
    ASSERT_TRUE(o.meta->append(thin));
    std::vector<uint64_t> lxt(chunks, ro(zero));
    lxt[7] = rw(3);
    auto seq = o.meta->append(meta::ResizeRecord{2, uint64_t{chunks} * geometry_.chunk_bytes(), chunks, 0, lxt, 2});
    ASSERT_TRUE(seq) << seq.error().message();
    ASSERT_FALSE(o.meta->wait_durable(seq.value()));
  }
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.zero_maps, chunks - 1u);
  {
    Open o = open();
    ASSERT_FALSE(o.meta->checkpoint());
  }
  r = fsck(true);
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.files, 1u);
}

TEST_F(FsckImage, PreenRepairsADamagedSuperblockCopy) {
  populate();
  write_bytes(4096 + 40, "garbage");
  Options o;
  o.preen = true;
  Report r = run(path_, o);
  EXPECT_EQ(r.exit_code, EXIT_FIXED) << all(r);
  EXPECT_EQ(fsck().exit_code, EXIT_CLEAN);
}

TEST_F(FsckImage, DamagedSuperblockCopyIsFoundAndRepaired) {
  populate();
  write_bytes(4096 + 40, "garbage");  // copy 1 (generation 3, the one in use)
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "superblock copy 1 at byte 4096")) << all(r);
  r = fsck(true);
  EXPECT_EQ(r.exit_code, EXIT_FIXED) << all(r);
  EXPECT_TRUE(mentions(r.repairs(), "wrote a fresh checkpoint")) << all(r);
  r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
}

TEST_F(FsckImage, DamagedSuperblockCopyIsACopyFindingOfTheSuperblockCheck) {
  populate();
  write_bytes(4096 + 40, "garbage");  // copy 1
  Report r = fsck();
  const std::vector<Finding> found = r.of(Check::superblock, Severity::error);
  ASSERT_EQ(found.size(), 1u) << all(r);
  EXPECT_TRUE(found[0].copy);
  EXPECT_EQ(found[0].fix, Fix::preen);
  EXPECT_EQ(found[0].text.rfind("superblock copy 1 at byte 4096: ", 0), 0u) << found[0].text;
  EXPECT_EQ(r.count(Severity::error), 1u) << "open() reports the same copy; it must not be repeated: " << all(r);
  for (const Finding& f : r.findings) EXPECT_NE(f.check, Check::checkpoint) << f.text;

  r = fsck(true);
  const std::vector<Finding> superseded = r.of(Check::superblock, Severity::repaired);
  ASSERT_EQ(superseded.size(), 1u) << all(r);
  EXPECT_TRUE(superseded[0].copy);
  EXPECT_EQ(r.of(Check::checkpoint, Severity::repaired).size(), 1u) << "the fresh checkpoint: " << all(r);
}

TEST_F(FsckImage, UnusableFallbackCheckpointIsANoteAndRepairRewritesIt) {
  populate();
  // Slot 0 holds generation 2, the fallback; the mount uses generation 3 in slot 1 and never reads
  // slot 0. An interrupted checkpoint leaves slot 0 like this (it writes there first), so this is
  // not an error; but fsck says so, and --repair restores the fallback.
  write_bytes(geometry_.checkpoint_offset[0] + 100, "XXXX");
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_TRUE(mentions(r.notes(), "checkpoint slot 0 (generation 2")) << all(r);
  EXPECT_TRUE(mentions(r.notes(), "bad CRC32C")) << all(r);
  EXPECT_EQ(fsck(true).exit_code, EXIT_FIXED);
  r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_FALSE(mentions(r.notes(), "checkpoint slot")) << all(r);
  EXPECT_EQ(r.files, 2u) << "nothing of the state in use is lost";
}

TEST_F(FsckImage, DamagedCheckpointOfTheCopyInUseIsAnError) {
  populate();
  // Damage the newest superblock's checkpoint: the mount falls back to generation 2.
  write_bytes(geometry_.checkpoint_offset[1] + 100, "XXXX");
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "checkpoint slot 1 (generation 3")) << all(r);
}

TEST_F(FsckImage, NewestCheckpointDamagedFallsBackAndRepairKeepsTheOlderState) {
  populate();
  write_bytes(geometry_.checkpoint_offset[1] + 70, "XXXX");  // generation 3's image
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT) << all(r);
  EXPECT_TRUE(mentions(r.notes(), "a fallback")) << all(r);
  EXPECT_EQ(fsck(true).exit_code, EXIT_FIXED);
  r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.directories, 1u) << "generation 2 had no directory yet";
}

TEST_F(FsckImage, BothSuperblocksDestroyedIsRefusedWithAMessage) {
  populate();
  write_bytes(40, "garbage");
  write_bytes(4096 + 40, "garbage");
  Report r = fsck(true);
  EXPECT_EQ(r.exit_code, EXIT_ERRORS_LEFT) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "no usable superblock")) << all(r);
}

TEST_F(FsckImage, UnformattedImageIsAnOperationalError) {
  write_bytes(0, std::string(8192, '\0'));
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_OPERATIONAL) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "not formatted with vlunfs")) << all(r);
}

TEST_F(FsckImage, MissingImageIsAnOperationalError) {
  Options o;
  Report r = run(dir_ + "/missing.img", o);
  EXPECT_EQ(r.exit_code, EXIT_OPERATIONAL);
}

TEST_F(FsckImage, ImageInUseIsRefused) {
  store::FileStoreOptions fo;
  fo.exclusive_lock = true;
  auto held = store::open_file_store(path_, fo);
  ASSERT_TRUE(held);
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_OPERATIONAL) << all(r);
  EXPECT_TRUE(mentions(r.errors(), "mounted")) << all(r);
}

TEST_F(FsckImage, OrphanOnDiskIsCleanAndRepairFreesAndZeroesItsChunk) {
  {
    Open o = open();
    ASSERT_TRUE(o.meta->append(meta::CreateRecord{meta::ROOT_INO, "f", 2, S_IFREG | 0644, 0, 0, 1, ""}));
    ASSERT_TRUE(o.meta->append(meta::ResizeRecord{2, 4096, 1, 0, {rw(5)}, 2}));
    auto seq = o.meta->append(meta::UnlinkRecord{meta::ROOT_INO, "f", 3});
    ASSERT_TRUE(seq);
    ASSERT_FALSE(o.meta->wait_durable(seq.value()));
  }
  write_bytes(geometry_.data_offset + 5 * geometry_.chunk_bytes() + 10, "old data");
  Report r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.orphans, 1u);
  r = fsck(true);
  EXPECT_EQ(r.exit_code, EXIT_FIXED) << all(r);
  EXPECT_TRUE(mentions(r.repairs(), "orphan (no name) removed, 1 chunks freed")) << all(r);
  r = fsck();
  EXPECT_EQ(r.exit_code, EXIT_CLEAN) << all(r);
  EXPECT_EQ(r.orphans, 0u);
  EXPECT_EQ(r.chunks_used, 0u);
  int fd = ::open(path_.c_str(), O_RDONLY);
  char buf[8] = {1};
  ASSERT_EQ(pread(fd, buf, 8, static_cast<off_t>(geometry_.data_offset + 5 * geometry_.chunk_bytes() + 10)), 8);
  close(fd);
  EXPECT_TRUE(std::all_of(buf, buf + 8, [](char c) { return c == 0; })) << "a freed chunk reads as zeros";
}

TEST_F(FsckImage, ReadOnlyCheckChangesNothing) {
  populate();
  write_bytes(4096 + 40, "garbage");
  struct stat before {};
  ASSERT_EQ(stat(path_.c_str(), &before), 0);
  EXPECT_EQ(fsck().exit_code, EXIT_ERRORS_LEFT);
  EXPECT_EQ(fsck().exit_code, EXIT_ERRORS_LEFT) << "a check without --repair must not fix anything";
}

}  // namespace
}  // namespace vlunfs::fsck
