#include "tools/mkfs_device.h"

#include "tools/size_arg.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace vlunfs::tools {

namespace {

// mountinfo escapes a space, tab, newline and backslash in a path as \ooo.
std::string unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); i++) {
    if (field[i] == '\\' && i + 3 < field.size() &&
        field.substr(i + 1, 3).find_first_not_of("01234567") == std::string::npos) {
      out += static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8));
      i += 3;
      continue;
    }
    out += field[i];
  }
  return out;
}

// The device and its partitions, as "MAJOR:MINOR" with their names in /sys/class/block.
std::vector<std::pair<std::string, std::string>> device_and_partitions(dev_t rdev) {
  std::vector<std::pair<std::string, std::string>> found;
  const std::string number = std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
  std::error_code ec;
  const auto sys = std::filesystem::canonical("/sys/dev/block/" + number, ec);
  if (ec) return {{number, ""}};
  found.push_back({number, sys.filename().string()});
  for (const auto& entry : std::filesystem::directory_iterator(sys, ec)) {
    if (!std::filesystem::exists(entry.path() / "partition")) continue;
    std::ifstream dev(entry.path() / "dev");
    std::string part;
    if (dev >> part) found.push_back({part, entry.path().filename().string()});
  }
  return found;
}

}  // namespace

std::string device_users(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return "";
  std::vector<std::string> users;
  const auto devices = device_and_partitions(st.st_rdev);
  // mountinfo: ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, number, root, mountpoint, word, type, source;
    fields >> id >> parent >> number >> root >> mountpoint;
    while (fields >> word && word != "-") {
    }
    fields >> type >> source;
    for (const auto& [dev, name] : devices) {
      if (dev != number) continue;
      const bool partition = &dev != &devices.front().first;
      users.push_back(std::string(partition ? name + " is " : "") + "mounted on " + unescape(mountpoint) + " (" + type + ")");
    }
    // A FUSE mount (vlunfs among them) has a device number of its own; its source names the device.
    struct stat source_st;
    if (number.rfind("0:", 0) == 0 && ::stat(unescape(source).c_str(), &source_st) == 0 &&
        S_ISBLK(source_st.st_mode) && source_st.st_rdev == st.st_rdev) {
      users.push_back("mounted on " + unescape(mountpoint) + " (" + type + ")");
    }
  }
  std::error_code ec;
  for (const auto& [dev, name] : devices) {
    if (name.empty()) continue;
    for (const auto& holder : std::filesystem::directory_iterator("/sys/class/block/" + name + "/holders", ec)) {
      users.push_back((name == devices.front().second ? "" : name + " is ") + std::string("held by ") +
                      holder.path().filename().string());
    }
  }
  std::string text;
  for (const auto& u : users) text += (text.empty() ? "" : ", ") + u;
  return text;
}

namespace {

class EraseProgressStore final : public store::BlockStore {
 public:
  EraseProgressStore(store::BlockStore& base, EraseProgress progress) : base_(base), progress_(std::move(progress)) {}

  std::error_code read(uint64_t offset, std::span<std::byte> out) override { return base_.read(offset, out); }
  std::error_code write(uint64_t offset, std::span<const std::byte> data) override { return base_.write(offset, data); }
  std::error_code flush() override { return base_.flush(); }
  std::error_code discard(uint64_t offset, uint64_t length) override {
    // 256 MiB: a fraction of a second when zeros have to be written, few calls when they do not.
    constexpr uint64_t kSlice = uint64_t{256} << 20;
    if (progress_) progress_(0, length);
    for (uint64_t done = 0; done < length;) {
      const uint64_t n = std::min(kSlice, length - done);
      if (auto ec = base_.discard(offset + done, n)) return ec;
      done += n;
      if (progress_) progress_(done, length);
    }
    return {};
  }
  uint64_t size_bytes() const override { return base_.size_bytes(); }
  uint32_t block_size() const override { return base_.block_size(); }

 private:
  store::BlockStore& base_;
  EraseProgress progress_;
};

}  // namespace

std::unique_ptr<store::BlockStore> with_erase_progress(store::BlockStore& base, EraseProgress progress) {
  return std::make_unique<EraseProgressStore>(base, std::move(progress));
}

EraseProgress erase_progress_line(std::FILE* out) {
  using Clock = std::chrono::steady_clock;
  auto start = std::make_shared<Clock::time_point>();
  return [out, start](uint64_t done, uint64_t total) {
    if (done == 0) *start = Clock::now();  // an erase begins
    if (total == 0 || Clock::now() - *start < std::chrono::seconds(1)) return;
    std::fprintf(out, "\rmkfs.vlunfs: erasing %s of %s (%llu%%)%s", human_size(done).c_str(), human_size(total).c_str(),
                 static_cast<unsigned long long>(done * 100 / total), done == total ? "\n" : "");
    std::fflush(out);
  };
}

}  // namespace vlunfs::tools
