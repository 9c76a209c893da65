// A read-only memory mapping of a whole file (RAII). Falls back to reading the file into an
// owned buffer when mapping is not wanted or not possible (some filesystems). Only regular,
// non-empty files are accepted: devices and pipes have no size to check offsets against.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nibble {

class MappedFile {
 public:
  // Throws FileError naming the path: missing, a directory, not a regular file, unreadable.
  // progress(done, total) is called as the file is read (return false to cancel: throws
  // LoadCancelled); a mapping reports once, complete.
  using Progress = std::function<bool(uint64_t done, uint64_t total)>;
  static std::shared_ptr<MappedFile> open(const std::string& path, bool use_mmap = true,
                                          const Progress& progress = {});
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Tells the kernel the pages of [offset, offset+len) will not be read again (after a repack).
  void release_pages(uint64_t offset, uint64_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
  std::vector<uint8_t> buffer_;
};

}  // namespace nibble
