// The exclusive lock (rbd_lock.h).
#include "store/rbd/rbd_lock.h"

#include <cerrno>

namespace vlunfs::store {

std::vector<std::string> exclusive_lock_owners(rbd_image_t image) {
  rbd_lock_mode_t mode;
  size_t count = 4;
  for (;;) {
    std::vector<char*> owners(count, nullptr);
    int r = rbd_lock_get_owners(image, &mode, owners.data(), &count);
    if (r == -ERANGE) continue;  // count now says how many there are
    std::vector<std::string> result;
    if (r < 0) return result;    // -ENOENT: nobody holds it
    for (size_t i = 0; i < count; ++i) result.emplace_back(owners[i]);
    rbd_lock_get_owners_cleanup(owners.data(), count);
    return result;
  }
}

namespace {

// rbd_list_lockers' '\0'-separated lists, split.
std::vector<std::string> split_nul_list(const std::vector<char>& buffer, size_t length) {
  std::vector<std::string> items;
  size_t start = 0;
  for (size_t i = 0; i < length && i < buffer.size(); ++i) {
    if (buffer[i] != '\0') continue;
    if (i > start) items.emplace_back(&buffer[start], i - start);
    start = i + 1;
  }
  return items;
}

}  // namespace

std::string describe_lock_holder(rbd_image_t image) {
  int exclusive = 0;
  size_t tag_len = 0, clients_len = 0, cookies_len = 0, addrs_len = 0;
  ssize_t r = rbd_list_lockers(image, &exclusive, nullptr, &tag_len, nullptr, &clients_len, nullptr, &cookies_len,
                               nullptr, &addrs_len);
  if (r == -ERANGE) {
    std::vector<char> tag(tag_len + 1), clients(clients_len + 1), cookies(cookies_len + 1), addrs(addrs_len + 1);
    r = rbd_list_lockers(image, &exclusive, tag.data(), &tag_len, clients.data(), &clients_len, cookies.data(),
                         &cookies_len, addrs.data(), &addrs_len);
    if (r > 0) {
      auto names = split_nul_list(clients, clients_len);
      auto where = split_nul_list(addrs, addrs_len);
      std::string text;
      for (size_t i = 0; i < names.size(); ++i) {
        if (!text.empty()) text += ", ";
        text += names[i];
        if (i < where.size()) text += " at " + where[i];
      }
      if (!text.empty()) return text;
    }
  }
  // No lockers list (an older cluster): librbd's owner handles are still better than nothing.
  std::string text;
  for (const std::string& owner : exclusive_lock_owners(image)) text += (text.empty() ? "" : ", ") + owner;
  return text;
}

int break_exclusive_lock(rbd_image_t image, std::string* broken) {
  const std::string holder = describe_lock_holder(image);
  for (const std::string& owner : exclusive_lock_owners(image)) {
    int r = rbd_lock_break(image, RBD_LOCK_MODE_EXCLUSIVE, owner.c_str());
    if (r < 0 && r != -ENOENT) return r;  // ENOENT: it let go meanwhile
    *broken = holder.empty() ? owner : holder;
  }
  return 0;
}

}  // namespace vlunfs::store
