// The control protocol between vlunctl and the vlunfs daemon: ioctls on the mount's own files and
// directories (as the btrfs and XFS tools talk to their filesystems). The kernel forwards them to
// the daemon serving that very file, with the caller's uid/gid/pid, so the answer comes from the
// right daemon in any mount or network namespace, and nobody can stand in for it.
//
// FUSE forwards only "restricted" ioctls: the kernel copies exactly _IOC_SIZE(cmd) bytes in
// (_IOC_WRITE) and out (_IOC_READ), and _IOC_SIZE is 14 bits, so every struct here is under
// 16 KiB. Answers longer than that (a listing) are read in pages; see vlunfs_ioc_report.
//
// Every struct starts with vlunfs_ioc_header. The caller sets version; the daemon refuses a version
// it does not know (EPROTO) and, on success, sets magic so that the caller knows a vlunfs daemon
// answered (not some other FUSE filesystem that happens to accept the number).
#pragma once

#include <linux/ioctl.h>
#include <stdint.h>

// Version 2: REPORT answers are records (fs/report_records.h) that vlunctl renders, and
// VLUNFS_REPORT_STATS. Version 1 answered text for people.
#define VLUNFS_IOC_VERSION 2u
#define VLUNFS_IOC_MAGIC 0x4e554c56u  // "VLUN" little-endian
// The ioctl "type" byte of every vlunfs command: unassigned in the kernel's ioctl-number.rst (0xB9
// to 0xBF are free). vlunctl sends these only to FUSE files (fstatfs), so only a FUSE daemon sees them.
#define VLUNFS_IOC_TYPE 0xbe

struct vlunfs_ioc_header {
  uint32_t version;  // in: VLUNFS_IOC_VERSION
  uint32_t magic;    // out: VLUNFS_IOC_MAGIC
};

// ---- VLUNFS_IOC_REPORT: an answer of records (what `vlunctl ls`, `info MOUNT`, `stats` render) ----
// On any file or directory of the mount. The daemon renders the whole answer for this caller and
// returns the bytes [offset, offset + length). answer_id identifies the rendering: pass 0 on the
// first page and the returned id on later ones; if the answer changed in between (the namespace
// moved), the daemon refuses with ESTALE and the caller starts again from offset 0.
#define VLUNFS_REPORT_VLUNS 1u  // one line per vLUN the caller may see (`vlunctl ls`)
#define VLUNFS_REPORT_POOL 2u   // pool geometry and usage (`vlunctl info MOUNTPOINT`)
#define VLUNFS_REPORT_STATS 3u  // counters of the pool and of each vLUN the caller may see (`vlunctl stats`)
#define VLUNFS_REPORT_PAGE 16000u

struct vlunfs_ioc_report {
  struct vlunfs_ioc_header header;
  uint32_t what;       // in: VLUNFS_REPORT_*
  uint32_t length;     // out: bytes of text[] used
  uint64_t offset;     // in: where in the answer this page starts
  uint64_t answer_id;  // in: 0, or the id of the answer being paged; out: this answer's id
  uint64_t total;      // out: length of the whole answer
  char text[VLUNFS_REPORT_PAGE];  // records, fs/report_records.h
};

// ---- VLUNFS_IOC_CLONE: a new file that shares every chunk of the file the ioctl is issued on ----
// Issued on the source file (open for reading). The new file is `name` in the directory whose
// inode number (st_ino, same mount) is dest_dir.
#define VLUNFS_CLONE_SNAPSHOT 1u  // the new file is read-only

struct vlunfs_ioc_clone {
  struct vlunfs_ioc_header header;
  uint32_t flags;  // in: VLUNFS_CLONE_*
  uint32_t reserved;
  uint64_t dest_dir;
  char name[256];  // NUL-terminated, at most 255 bytes (meta::MAX_NAME)
};

// ---- VLUNFS_IOC_SET_THIN: make the (empty) file the ioctl is issued on thin, or thick again ----
struct vlunfs_ioc_thin {
  struct vlunfs_ioc_header header;
  uint32_t thin;  // in: 1 thin, 0 thick
  uint32_t reserved;
};

// ---- VLUNFS_IOC_SYNC: make every file's size and mtime durable (the whole pool) ----
struct vlunfs_ioc_sync {
  struct vlunfs_ioc_header header;
};

#define VLUNFS_IOC_REPORT _IOWR(VLUNFS_IOC_TYPE, 1, struct vlunfs_ioc_report)
#define VLUNFS_IOC_CLONE _IOWR(VLUNFS_IOC_TYPE, 2, struct vlunfs_ioc_clone)
#define VLUNFS_IOC_SET_THIN _IOWR(VLUNFS_IOC_TYPE, 3, struct vlunfs_ioc_thin)
#define VLUNFS_IOC_SYNC _IOWR(VLUNFS_IOC_TYPE, 4, struct vlunfs_ioc_sync)

#ifdef __cplusplus
static_assert(sizeof(struct vlunfs_ioc_report) < (1u << 14), "FUSE forwards at most _IOC_SIZE bytes");
static_assert(sizeof(struct vlunfs_ioc_clone) == 280, "the wire layout is fixed");
#endif
