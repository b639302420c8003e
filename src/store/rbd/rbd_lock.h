// The image's exclusive lock as fencing (docs/rbd.md "Fencing"): who holds it, in words, and
// breaking it for a takeover.
#pragma once

#include <rbd/librbd.h>

#include <string>
#include <vector>

namespace vlunfs::store {

// The lock's owners as librbd names them (the handles rbd_lock_break takes); empty if unlocked.
std::vector<std::string> exclusive_lock_owners(rbd_image_t image);

// Who holds the lock, for a person: "client.4123 at 127.0.0.1:0/3141592" (from the lockers list);
// empty if nobody does.
std::string describe_lock_holder(rbd_image_t image);

// Breaks every owner's lock (each owner is blocklisted by the cluster, librbd's
// rbd_blocklist_on_break_lock). Returns 0 or -errno; *broken names whom it broke.
int break_exclusive_lock(rbd_image_t image, std::string* broken);

}  // namespace vlunfs::store
