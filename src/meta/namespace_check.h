// The invariants every namespace keeps, checked on whatever a checkpoint decodes (a checkpoint with
// a valid CRC may still come from a buggy writer or a crafted image) and by tests after crashes.
#pragma once

#include "vlunfs/meta/namespace.h"

#include <string>

namespace vlunfs::meta {

// True if `ns` is a tree rooted at ROOT_INO that apply() can work on: every name points at an
// inode, every directory has exactly one name and a matching "..", link counts match the names,
// types and per-type fields agree, every ino is below next_ino. Otherwise *why says what is wrong.
bool check_namespace(const Namespace& ns, std::string* why);

}  // namespace vlunfs::meta
