// The invariants every namespace keeps, checked on whatever a checkpoint decodes (a checkpoint with
// a valid CRC may still come from a buggy writer or a crafted image) and by tests after crashes.
#pragma once

#include "vlunfs/meta/namespace.h"

#include "vlunfs/error.h"

#include <string>

namespace vlunfs::meta {

// Nothing (a false Error) if `ns` is a tree rooted at ROOT_INO that apply() can work on: every
// name points at an inode, every directory has exactly one name and a matching "..", link counts
// match the names, types and per-type fields agree, every ino is below next_ino. Otherwise
// EUCLEAN, with a message that says what is wrong. (fsck::check_namespace is the repairing check
// of a whole device's namespace against its geometry; this is the loader's gate.)
Error check_invariants(const Namespace& ns);

}  // namespace vlunfs::meta
