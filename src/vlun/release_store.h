// Stores into memory the AFU reads while commands run (the RHT page and the LXT arrays): each is
// a release store, so the AFU, reading with acquire loads, sees the fields in the order the
// driver wrote them (spec §4.4: "each step made visible to the AFU before the next").
#pragma once

#include <atomic>

namespace vlunfs::vlun {

template <class T>
void store_release(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_release);
}

// How an LXT array publishes an RHT field (lxt_start, lxt_cnt): a release store. Found by
// argument-dependent lookup, so a test can give LxtArray an entry whose stores it watches.
template <class T>
void publish_field(T& field, T value) {
  store_release<T>(field, value);
}

}  // namespace vlunfs::vlun
