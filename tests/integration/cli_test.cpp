// The batchgate binary itself: --check-config, --version, and the signals
// (SIGHUP reload, SIGTERM drain) of a real process.
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <sstream>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BATCHGATE_BINARY
#define BATCHGATE_BINARY "batchgate"
#endif

extern char** environ;

using namespace batchgate::test;

namespace {

std::string temp_path(const char* stem) {
    return std::string("/tmp/batchgate-cli-") + stem + "-" + std::to_string(::getpid());
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Runs batchgate with `args`, stdout and stderr to `out`; returns the pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& out) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> argv;
    std::string binary = BATCHGATE_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copies = args;
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE_EQUAL(rc, 0);
    return pid;
}

int wait_exit(pid_t pid, int timeout_ms = 10000) {
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
}

int run(const std::vector<std::string>& args, std::string& output) {
    auto out = temp_path("out");
    int rc = wait_exit(spawn(args, out));
    output = read_file(out);
    std::remove(out.c_str());
    return rc;
}

std::string config_for(const std::string& backend) {
    return "listen: [{address: 127.0.0.1:0}]\nworkers: 1\naccess_log: false\ndrain_timeout: 5s\n"
           "routes: [{prefix: /, backend: b}]\nbackends: {b: {endpoints: [" + backend + "]}}\n";
}

// Waits for the "listening on 127.0.0.1:PORT" line and returns PORT.
std::uint16_t listening_port(const std::string& log_path) {
    for (int i = 0; i < 500; ++i) {
        auto log = read_file(log_path);
        auto at = log.find("listening on 127.0.0.1:");
        if (at != std::string::npos) return static_cast<std::uint16_t>(std::stoi(log.substr(at + 23)));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    BOOST_FAIL("batchgate did not start: " << read_file(log_path));
    return 0;
}

reply named(const char* name) {
    reply r;
    r.response.body() = name;
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(check_config_and_version) {
    auto good = temp_path("good.yaml");
    auto bad = temp_path("bad.yaml");
    write_file(good, config_for("127.0.0.1:9"));
    write_file(bad, config_for("127.0.0.1:9") + "backends2: 1\n");
    std::string out;
    BOOST_TEST(run({"--check-config", good}, out) == 0);
    BOOST_TEST(out.find(": ok") != std::string::npos);
    BOOST_TEST(run({"--check-config", bad}, out) == 1);
    BOOST_TEST(out.find(bad + ":7:1: backends2: unknown key 'backends2'") != std::string::npos, out);
    BOOST_TEST(run({"--check-config", "/nonexistent.yaml"}, out) == 1);
    BOOST_TEST(out.find("cannot read") != std::string::npos);
    BOOST_TEST(run({"--version"}, out) == 0);
    BOOST_TEST(out.starts_with("batchgate "));
    BOOST_TEST(run({"--bogus"}, out) == 2);
    BOOST_TEST(run({"--config", bad}, out) == 1);
    std::remove(good.c_str());
    std::remove(bad.c_str());
}

BOOST_AUTO_TEST_CASE(sighup_reloads_and_sigterm_drains) {
    test_backend first([](const request_type&) { return named("first"); });
    test_backend second([](const request_type&) { return named("second"); });
    auto cfg = temp_path("run.yaml");
    auto log = temp_path("run.log");
    write_file(cfg, config_for(first.address()));
    pid_t pid = spawn({"--config", cfg}, log);
    auto port = listening_port(log);
    {
        client c(port);
        BOOST_TEST(c.request(make_request(http::verb::get, "/x")).body() == "first");
    }

    // A bad file is refused; the running configuration stays.
    write_file(cfg, "listen: [{address: 127.0.0.1:0}]\nroutes: nonsense\n");
    ::kill(pid, SIGHUP);
    BOOST_TEST(eventually([&] { return read_file(log).find("reload refused") != std::string::npos; }));
    {
        client c(port);
        BOOST_TEST(c.request(make_request(http::verb::get, "/x")).body() == "first");
    }

    write_file(cfg, config_for(second.address()));
    ::kill(pid, SIGHUP);
    BOOST_TEST(eventually([&] { return read_file(log).find("reloaded") != std::string::npos; }));
    {
        client c(port);
        BOOST_TEST(c.request(make_request(http::verb::get, "/x")).body() == "second");
    }

    ::kill(pid, SIGTERM);
    BOOST_TEST(wait_exit(pid) == 0);
    BOOST_TEST(read_file(log).find("drained") != std::string::npos);
    std::remove(cfg.c_str());
    std::remove(log.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
