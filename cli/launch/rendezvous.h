// How the hook's nodes find node 0 without a fixed port: node 0 listens on an ephemeral port and
// publishes "where to join + the job secret" in a small file in a directory every node shares
// (the job's working directory by default); the others wait for that file. The file is written
// atomically (temp + rename), mode 0600, so only the job's user can read the secret; a reader
// refuses a file that another user owns or that others may read (someone could have planted it).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace imgcast::cli::launch {

struct Invitation {
  std::string control_address;  // host:port of node 0's control listener
  std::string secret_line;      // replicator::JobSecret line
};

class Rendezvous {
 public:
  // `key` names the launch (job and step) and the destination; any characters are fine.
  Rendezvous(std::filesystem::path directory, const std::string& key);

  const std::filesystem::path& file() const noexcept { return file_; }

  // Node 0. Throws InputError when the directory cannot take the file.
  void publish(const Invitation& invitation);
  // Node 0, when it fails before it could publish: the others fail at once with `reason` instead
  // of waiting for their timeout. Best effort (never throws).
  void publish_failure(const std::string& reason) noexcept;
  // Every other node: waits (polling, backing off to 0.5 s) until the file appears, up to
  // `timeout`. Throws TransferError on timeout or when node 0 published a failure, SecurityError for a file it must not trust,
  // InputError for a malformed one.
  Invitation wait(std::chrono::milliseconds timeout) const;
  // Node 0, when the transfer is over (ignores a file already gone).
  void withdraw() noexcept;

 private:
  void write_file(const std::string& second_line, const std::string& third_line);

  std::filesystem::path directory_;
  std::filesystem::path file_;
};

// [A-Za-z0-9._-] kept, anything else '_': safe in a file name.
std::string file_name_safe(const std::string& text);

}  // namespace imgcast::cli::launch
