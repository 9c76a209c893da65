// MappedFile: contents, the read fallback, errors, and that released pages read back intact.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "loaders/mapped_file.h"
#include "loaders/model_file.h"
#include "loaders_test_util.h"

namespace nibble {
namespace {

using test::write_bytes;

TEST(MappedFile, MapsAndReads) {
  test::TempDir dir;
  std::vector<uint8_t> bytes(3 * 4096 + 123);
  for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<uint8_t>(k * 7);
  const std::string p = dir.file("f.bin");
  write_bytes(p, bytes);
  for (bool mmap : {true, false}) {
    auto f = MappedFile::open(p, mmap);
    EXPECT_EQ(f->path(), p);
    ASSERT_EQ(f->size(), bytes.size());
    EXPECT_EQ(std::memcmp(f->data(), bytes.data(), bytes.size()), 0);
    // Releasing is a hint: the bytes read back the same afterwards (refaulted from the file).
    f->release_pages(0, f->size());
    f->release_pages(100, 5000);
    f->release_pages(f->size() - 1, 1000);
    f->release_pages(f->size() + 10, 10);
    EXPECT_EQ(std::memcmp(f->data(), bytes.data(), bytes.size()), 0);
  }
}

TEST(MappedFile, Errors) {
  test::TempDir dir;
  auto expect_error = [](const std::string& path, const char* frag) {
    for (bool mmap : {true, false}) {
      try {
        MappedFile::open(path, mmap);
        ADD_FAILURE() << "expected an error for " << path;
      } catch (const FileError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
        EXPECT_NE(msg.find(frag), std::string::npos) << msg;
      }
    }
  };
  expect_error(dir.file("missing"), "No such file");
  expect_error(dir.path(), "directory");
  expect_error("/dev/zero", "not a regular file");
  // A FIFO with no writer: rejected at once rather than blocking in open().
  ASSERT_EQ(mkfifo(dir.file("fifo").c_str(), 0600), 0);
  expect_error(dir.file("fifo"), "not a regular file");
  write_bytes(dir.file("empty"), nullptr, 0);
  expect_error(dir.file("empty"), "empty");
}

}  // namespace
}  // namespace nibble
