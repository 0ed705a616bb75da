// The batchgate binary itself: --check-config, --version, and the signals
// (SIGHUP reload, SIGTERM drain) of a real process.
#include "tests/integration/child_process.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/test_backend.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <unistd.h>

// This file's own namespace, so its helpers cannot meet another test file's
// in a unity build (see BATCHGATE_UNITY_TESTS in CMakeLists.txt).
namespace BATCHGATE_TEST_FILE {

using namespace batchgate::test;

namespace {

int run(const std::vector<std::string>& args, std::string& output) {
    auto out = temp_path("out");
    int rc = wait_exit(spawn_batchgate(args, out));
    output = read_file(out);
    std::remove(out.c_str());
    return rc;
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
    write_file(good, binary_config("127.0.0.1:9", false));
    write_file(bad, binary_config("127.0.0.1:9", false) + "backends2: 1\n");
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
    write_file(cfg, binary_config(first.address(), false));
    pid_t pid = spawn_batchgate({"--config", cfg}, log);
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

    write_file(cfg, binary_config(second.address(), false));
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

}  // namespace BATCHGATE_TEST_FILE
