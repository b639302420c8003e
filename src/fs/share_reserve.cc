// The share reserve (share_reserve.h): its accounting.
#include "fs/share_reserve.h"

#include "vlunfs/sislite.h"

#include <sys/stat.h>

#include <algorithm>

namespace vlunfs::fs {

void ShareReserve::rebuild(const meta::Namespace& ns) {
  std::unordered_map<uint64_t, Owners> all;
  thick_zero_maps_ = 0;
  for (const auto& [ino, inode] : ns.inodes) {
    if ((inode.mode & S_IFMT) != S_IFREG) continue;
    const bool thick = thick_writable(inode.flags);
    for (uint64_t entry : inode.lxt) {
      const uint64_t aun = sisl::lxt_aun(entry);
      if (aun == zero_aun_) {
        if (thick) thick_zero_maps_++;
        continue;
      }
      auto [it, fresh] = all.try_emplace(aun, Owners{0, 0});
      it->second.refs++;
      if (thick) it->second.thick++;
    }
  }
  shared_.clear();
  reserved_ = thick_zero_maps_;
  for (const auto& [aun, owners] : all) {
    if (owners.refs < 2) continue;
    shared_.emplace(aun, owners);
    reserved_ += reserve_of(owners);
  }
}

int64_t ShareReserve::step(const Change& c, Owners& owners, bool tracked) const {
  const auto before = static_cast<int64_t>(reserve_of(owners));
  if (c.added) {
    if (!tracked && owners.refs == 1) owners.thick = c.sole_owner_thick ? 1 : 0;
    owners.refs++;
    if (c.thick) owners.thick++;
  } else {
    if (owners.refs > 0) owners.refs--;
    if (c.thick && owners.thick > 0) owners.thick--;
  }
  return static_cast<int64_t>(reserve_of(owners)) - before;
}

ShareReserve::Effect ShareReserve::preview(std::span<const Change> changes) const {
  Effect effect;
  // The chunks touched, as they would become; untracked chunks start with their one owner.
  std::unordered_map<uint64_t, std::pair<Owners, bool>> touched;
  for (const Change& c : changes) {
    if (c.aun == zero_aun_) {
      if (c.thick) effect.reserved += c.added ? 1 : -1;
      continue;
    }
    auto it = touched.find(c.aun);
    if (it == touched.end()) {
      auto known = shared_.find(c.aun);
      const bool tracked = known != shared_.end();
      it = touched.emplace(c.aun, std::make_pair(tracked ? known->second : Owners{}, tracked)).first;
    }
    auto& [owners, tracked] = it->second;
    effect.reserved += step(c, owners, tracked);
    if (!c.added && owners.refs == 0) effect.freed++;
    if (owners.refs == 1) tracked = false;  // a sole owner again: its kind is forgotten
  }
  return effect;
}

ShareReserve::Effect ShareReserve::apply(std::span<const Change> changes) {
  Effect effect;
  for (const Change& c : changes) {
    if (c.aun == zero_aun_) {
      if (!c.thick) continue;
      if (c.added) {
        thick_zero_maps_++;
        reserved_++;
        effect.reserved++;
      } else if (thick_zero_maps_ > 0) {
        thick_zero_maps_--;
        reserved_--;
        effect.reserved--;
      }
      continue;
    }
    auto it = shared_.find(c.aun);
    const bool tracked = it != shared_.end();
    Owners owners = tracked ? it->second : Owners{};
    const int64_t delta = step(c, owners, tracked);
    effect.reserved += delta;
    reserved_ = static_cast<uint64_t>(static_cast<int64_t>(reserved_) + delta);
    if (!c.added && owners.refs == 0) effect.freed++;
    if (owners.refs > 1) {
      shared_[c.aun] = owners;
    } else if (tracked) {
      shared_.erase(it);
    }
  }
  return effect;
}

bool ShareReserve::allows(uint64_t free_chunks, int64_t use) const {
  if (use <= 0) return true;
  const int64_t unreserved = static_cast<int64_t>(free_chunks) - static_cast<int64_t>(reserved_);
  return unreserved - use >= 0;
}

}  // namespace vlunfs::fs
