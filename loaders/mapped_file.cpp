#include "loaders/mapped_file.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "loaders/model_file.h"

namespace nibble {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Closes the descriptor on every path out of open(); the mapping outlives it (POSIX keeps a
// mapping valid after close).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, bool use_mmap,
                                             const Progress& progress) {
  auto report = [&](uint64_t done, uint64_t total) {
    if (progress && !progress(done, total)) throw LoadCancelled(path + ": loading cancelled");
  };
  int raw = -1;
  do {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer before fstat can
    // reject it. It changes nothing for regular files.
    raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (raw < 0 && errno == EINTR);
  if (raw < 0) throw FileError(path + ": cannot open: " + errno_text(errno));
  Fd fd(raw);

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw FileError(path + ": cannot stat: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) throw FileError(path + ": is a directory, not a model file");
  // Devices, pipes and sockets have no meaningful size (/dev/zero would read forever).
  if (!S_ISREG(st.st_mode)) throw FileError(path + ": not a regular file");
  if (st.st_size <= 0) throw FileError(path + ": file is empty");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > std::numeric_limits<size_t>::max()) {
    throw FileError(path + ": file of " + std::to_string(size) + " bytes is too large to map");
  }

  // make_shared cannot reach the private constructor.
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size;

  if (use_mmap) {
    void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p != MAP_FAILED) {
      f->data_ = static_cast<const uint8_t*>(p);
      f->mapped_ = true;
      report(size, size);
      return f;
    }
    // Fall through: some filesystems cannot map; reading still works.
  }

  f->buffer_.resize(static_cast<size_t>(size));
  uint64_t done = 0;
  while (done < size) {
    // Chunks of 64 MiB so a caller's progress bar moves and a cancel is heard.
    const uint64_t chunk = std::min<uint64_t>(size - done, uint64_t{64} << 20);
    const ssize_t n = ::pread(fd.get(), f->buffer_.data() + done, static_cast<size_t>(chunk),
                              static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw FileError(path + ": read failed at offset " + std::to_string(done) + ": " +
                      errno_text(errno));
    }
    if (n == 0) {
      throw FileError(path + ": file shrank while reading (got " + std::to_string(done) + " of " +
                      std::to_string(size) + " bytes)");
    }
    done += static_cast<uint64_t>(n);
    report(done, size);
  }
  f->data_ = f->buffer_.data();
  return f;
}

MappedFile::~MappedFile() {
  if (mapped_ && data_ != nullptr) {
    ::munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
  }
}

void MappedFile::release_pages(uint64_t offset, uint64_t len) const {
  // Only a mapping can give pages back; an owned buffer is freed as a whole with the object.
  if (!mapped_ || offset >= size_) return;
  if (len > size_ - offset) len = size_ - offset;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Shrink to whole pages inside the range: a partial page at either end may still hold bytes
  // of a neighbouring tensor that is in use. The mapping is private and read-only, so
  // MADV_DONTNEED only drops clean page-cache references; a later read would refault from the
  // file rather than see zeros.
  const uint64_t begin = (offset + page - 1) / page * page;
  const uint64_t end = (offset + len) / page * page;
  if (end <= begin) return;
  ::madvise(const_cast<uint8_t*>(data_) + begin, static_cast<size_t>(end - begin), MADV_DONTNEED);
}

}  // namespace nibble
