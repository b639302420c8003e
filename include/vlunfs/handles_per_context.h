// Resource handles (RHT entries) per context: MAX_RHT_PER_CONTEXT = PAGE_SIZE / 16 (spec §2), 4096
// with the 64 KiB pages of ppc64, where CAPI flash runs (256 with 4 KiB pages).
#pragma once

namespace vlunfs::vlun {

inline constexpr unsigned MAX_RHT_PER_CONTEXT = 4096;

}  // namespace vlunfs::vlun
