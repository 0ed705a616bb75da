// The batchgate binary as a child process, for what only a real process
// shows: the command line, signals (SIGHUP reload, SIGTERM drain) and the
// access log on stdout. Waits are polls with a deadline, never open-ended.
#pragma once

#include "tests/integration/harness.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#ifndef BATCHGATE_BINARY
#define BATCHGATE_BINARY "batchgate"
#endif

extern char** environ;

namespace batchgate::test {

// A file name under /tmp unique to this test process.
inline std::string temp_path(const std::string& stem) {
    return "/tmp/batchgate-test-" + stem + "-" + std::to_string(::getpid());
}

inline void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Runs batchgate with `args`: stdout to `out`, stderr to `err` (or to `out`
// as well when not given); returns the pid.
inline pid_t spawn_batchgate(const std::vector<std::string>& args, const std::string& out,
                             const std::optional<std::string>& err = std::nullopt) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err)
        posix_spawn_file_actions_addopen(&actions, 2, err->c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    else
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::string binary = BATCHGATE_BINARY;
    std::vector<std::string> copies = args;
    std::vector<char*> argv{binary.data()};
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE_EQUAL(rc, 0);
    return pid;
}

// The exit status (128 + signal when killed by one), or -1 when the child
// did not end within `limit` (it is killed then).
inline int wait_exit(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    int code = -1;
    const bool ended = eventually(
        [&] {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) != pid) return false;
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return true;
        },
        limit);
    if (!ended) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    return code;
}

// Kills the child at scope exit if a failed assertion left it running.
struct child_guard {
    pid_t pid;
    ~child_guard() {
        if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
};

// Waits for the "listening on 127.0.0.1:PORT" line in `log_path` and returns PORT.
inline std::uint16_t listening_port(const std::string& log_path) {
    std::uint16_t port = 0;
    eventually([&] {
        const auto log = read_file(log_path);
        const auto at = log.find("listening on 127.0.0.1:");
        if (at == std::string::npos) return false;
        port = static_cast<std::uint16_t>(std::stoi(log.substr(at + 23)));
        return true;
    });
    BOOST_REQUIRE_MESSAGE(port != 0, "batchgate did not start: " << read_file(log_path));
    return port;
}

// One worker, one listener on port 0, everything routed to `backend`.
inline std::string binary_config(const std::string& backend, bool access_log) {
    return std::string("listen: [{address: 127.0.0.1:0}]\nworkers: 1\naccess_log: ") + (access_log ? "true" : "false") +
           "\ndrain_timeout: 5s\nroutes: [{prefix: /, backend: b}]\nbackends: {b: {endpoints: [" + backend + "]}}\n";
}

}  // namespace batchgate::test
