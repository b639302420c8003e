// meta/: the persistent namespace and chunk maps (design.md decision 3).
//
// On disk, at the start of the device (docs/format.md): two superblocks (generation + CRC32C),
// two checkpoint slots (the whole namespace with every file's LXT), and an append-only journal of
// records (sequence number + CRC32C each). The data area (the physical LUN the AFU sees) follows.
//
// In memory, the namespace is plain data. Every change is a Record; apply() is the one function
// that changes a Namespace, used both live and when the journal is replayed at mount, so the two
// can never disagree.
#pragma once

// One header per concept; this one only gathers them for code that uses several.
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/inspection.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"
