// Shared by the fuzz targets. The loaders take a path (MappedFile has no from-memory
// constructor), so each input is written to an anonymous in-memory file (memfd) and handed over
// as /proc/self/fd/N: no disk I/O, and one file per process, so parallel fuzzers never collide.
// Targets read with use_mmap = false: the bytes then live in an exact-size heap buffer, where
// ASan reports even a one-byte over-read (a mapping would hide it up to the page end).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace nibble::fuzz {

inline const std::string& input_as_file(const uint8_t* data, size_t size) {
  static int fd = -1;
  static std::string path;
  if (fd < 0) {
    fd = memfd_create("nibble-fuzz", MFD_CLOEXEC);
    if (fd < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  if (ftruncate(fd, 0) != 0) std::abort();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  return path;
}

// Makes a value observable so reads of it are not optimised away (ASan checks each one).
inline void consume(uint64_t v) {
  static volatile uint64_t sink;
  sink = sink + v;
}

}  // namespace nibble::fuzz
