// llm/atomic_file.cpp: atomic whole-file writes (see atomic_file.h).
#include "llm/atomic_file.h"

#include "llm/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace llama_mm {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::Runtime, path + ": write failed: " + what);
}

}  // namespace

void sync_directory(const std::string& dir_in) {
  const std::string dir = dir_in.empty() ? "." : dir_in;
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail(dir, std::string("cannot open the directory to fsync it: ") + std::strerror(errno));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL) fail(dir, std::string("fsync of the directory failed: ") + std::strerror(err));
}

void write_file_atomic(const std::string& path, const std::string& content) {
  static std::atomic<unsigned> seq{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(seq++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create " + tmp + ": " + std::strerror(errno));
  std::string err;
  for (size_t done = 0; err.empty() && done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = std::string("write: ") + std::strerror(errno);
    else done += static_cast<size_t>(n);
  }
  if (err.empty() && ::fsync(fd) != 0) err = std::string("fsync: ") + std::strerror(errno);
  if (::close(fd) != 0 && err.empty()) err = std::string("close: ") + std::strerror(errno);
  if (err.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) err = std::string("rename: ") + std::strerror(errno);
  if (!err.empty()) {
    ::unlink(tmp.c_str());
    fail(path, err);
  }
  sync_directory(std::filesystem::path(path).parent_path().string());
}

}  // namespace llama_mm
