// batchgate: argv, configuration, workers, and the signals that drain
// (SIGTERM/SIGINT) or reload (SIGHUP) them.
#include "proxy/config/config.hpp"
#include "proxy/ops/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>

namespace po = boost::program_options;
using namespace batchgate;

namespace {

void log_line(const std::string& message) { std::fprintf(stderr, "batchgate: %s\n", message.c_str()); }

int run(const std::string& config_path) {
    config cfg;
    try {
        cfg = load_config_file(config_path);
    } catch (const config_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    std::optional<server> srv;
    try {
        srv.emplace(cfg);
    } catch (const std::exception& e) {
        log_line(e.what());
        return 1;
    }
    srv->start();
    for (const auto& ep : srv->local_endpoints())
        log_line("listening on " + ep.address().to_string() + ":" + std::to_string(ep.port()) + " with " +
                 std::to_string(srv->worker_count()) + " workers");
    if (auto admin = srv->admin_endpoint())
        log_line("admin (/metrics, /healthz, /readyz) on " + admin->address().to_string() + ":" +
                 std::to_string(admin->port()));

    boost::asio::io_context signals_context(1);
    boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM, SIGHUP);
    duration drain_timeout = cfg.drain_timeout;
    std::function<void(const boost::system::error_code&, int)> on_signal = [&](const auto& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            try {
                auto next = load_config_file(config_path);
                if (next.listen.size() != cfg.listen.size())
                    log_line("reload: listener changes need a restart; keeping the current listeners");
                drain_timeout = next.drain_timeout;
                srv->reload(std::move(next));
                log_line("reloaded " + config_path);
            } catch (const std::exception& e) {  // a config_error, or a backend TLS context that cannot be built
                log_line(std::string("reload refused, keeping the running configuration: ") + e.what());
            }
            signals.async_wait(on_signal);
            return;
        }
        log_line("draining (up to " + std::to_string(drain_timeout.count()) + " ms)");
        srv->drain();
    };
    signals.async_wait(on_signal);
    signals_context.run();  // returns once a drain signal stopped re-arming the wait
    const bool clean = srv->wait(drain_timeout);
    log_line(clean ? "drained, exiting" : "drain_timeout passed, closing what was left");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description options("batchgate " BATCHGATE_VERSION " — batch-splitting reverse proxy\nOptions");
    options.add_options()("config,c", po::value<std::string>(), "run with this YAML configuration file")(
        "check-config", po::value<std::string>(), "validate this configuration file and exit (0 ok, 1 bad)")(
        "version", "print the version and exit")("help,h", "print this help and exit");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, options), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "batchgate: " << e.what() << "\n" << options;
        return 2;
    }
    if (vm.count("help")) {
        std::cout << options;
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "batchgate " BATCHGATE_VERSION "\n";
        return 0;
    }
    if (vm.count("check-config")) {
        const auto path = vm["check-config"].as<std::string>();
        try {
            auto cfg = load_config_file(path);
            std::cout << path << ": ok (" << cfg.routes.size() << " routes, " << cfg.backends.size()
                      << " backends)\n";
            return 0;
        } catch (const config_error& e) {
            std::cerr << e.what() << "\n";
            return 1;
        }
    }
    if (!vm.count("config")) {
        std::cerr << "batchgate: --config FILE is required\n" << options;
        return 2;
    }
    return run(vm["config"].as<std::string>());
}
