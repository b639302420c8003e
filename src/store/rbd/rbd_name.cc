// Parsing "rbd:POOL/IMAGE" (rbd_store.h); built with or without librbd, so that every program can
// say "this build has no RBD support" rather than look for a file named rbd:pool/image.
#include "store/rbd/rbd_store.h"

namespace vlunfs::store {

std::optional<RbdImageName> parse_rbd_name(std::string_view text) {
  constexpr std::string_view kPrefix = "rbd:";
  if (!text.starts_with(kPrefix)) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  RbdImageName name;
  const size_t slash = text.find('/');
  // Ceph's own spec is [POOL/[NAMESPACE/]]IMAGE; vlunfs asks for the pool always, so that a
  // mount never lands in whatever pool a client's conf defaults to.
  if (slash == std::string_view::npos || text.find('/', slash + 1) != std::string_view::npos) return name;
  name.pool = std::string(text.substr(0, slash));
  name.image = std::string(text.substr(slash + 1));
  return name;
}

}  // namespace vlunfs::store
