// echo_server [--port N] [--interface ADDR] [--systemd] [--pidfile PATH] [--uid USER
// [--gid GROUP]] [--logfile PATH | --log-format text|priority|journal]: echoes every byte
// back to its sender. Prints "listening on ADDR:PORT" first, so scripts can find a port
// picked by the kernel. With --systemd it serves the first socket systemd (or
// systemd-socket-activate) passed instead of binding one, and tells a Type=notify unit
// when it is ready. As twistd: --pidfile writes its pid there (removed at exit); --uid and
// --gid switch to that user and group once the port is bound, so a port below 1024 can be
// served without root; --logfile appends the log to PATH and reopens it on SIGHUP (for
// logrotate). --log-format priority writes "<N>"-prefixed lines to stderr (journald reads
// the priority), journal sends the journal's native datagrams (to --journal-socket PATH,
// default /run/systemd/journal/socket). See docs/deploying.md.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>

#include "examples/cli.hpp"
#include "framework/log.hpp"
#include "framework/log_file.hpp"
#include "framework/log_journal.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/pidfile.hpp"
#include "transports/privileges.hpp"
#include "transports/systemd.hpp"
#include "transports/tcp.hpp"

namespace {

class Echo : public torsion::Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

}  // namespace

int example_main(int argc, char** argv) {
  int port = 0;
  bool systemd = false;
  std::string pidfile_path, user, group, logfile, log_format = "text";
  std::string journal_socket(torsion::default_journal_socket);
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = torsion::examples::port_arg(argv[++i]);
    } else if (std::strcmp(argv[i], "--interface") == 0 && i + 1 < argc) {
      options.interface = argv[++i];
    } else if (std::strcmp(argv[i], "--systemd") == 0) {
      systemd = true;
    } else if (std::strcmp(argv[i], "--pidfile") == 0 && i + 1 < argc) {
      pidfile_path = argv[++i];
    } else if (std::strcmp(argv[i], "--uid") == 0 && i + 1 < argc) {
      user = argv[++i];
    } else if (std::strcmp(argv[i], "--gid") == 0 && i + 1 < argc) {
      group = argv[++i];
    } else if (std::strcmp(argv[i], "--logfile") == 0 && i + 1 < argc) {
      logfile = argv[++i];
    } else if (std::strcmp(argv[i], "--log-format") == 0 && i + 1 < argc) {
      log_format = argv[++i];
    } else if (std::strcmp(argv[i], "--journal-socket") == 0 && i + 1 < argc) {
      journal_socket = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--port N] [--interface ADDR] [--systemd] [--pidfile PATH] "
                   "[--uid USER [--gid GROUP]] [--logfile PATH | --log-format "
                   "text|priority|journal [--journal-socket PATH]]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!group.empty() && user.empty())
    throw torsion::examples::UsageError("--gid needs --uid");
  // Logging first, so that everything below is logged where it should be.
  if (!logfile.empty() && log_format != "text")
    throw torsion::examples::UsageError("--logfile writes text lines: it takes no --log-format");
  if (!logfile.empty()) {
    auto file = torsion::LogFile::open(logfile);
    file->reopen_on_sighup();  // logrotate's postrotate: kill -HUP
    torsion::set_log_event_sink(file->sink());
  } else if (log_format == "priority") {
    torsion::set_log_event_sink(torsion::stderr_priority_sink());
  } else if (log_format == "journal") {
    torsion::set_log_event_sink(torsion::journal_sink("echo_server", journal_socket));
  } else if (log_format != "text") {
    throw torsion::examples::UsageError("--log-format '" + log_format +
                                        "' is not text, priority or journal");
  }
  torsion::Reactor reactor;
  auto factory = torsion::make_factory<Echo>();
  auto listening = systemd ? torsion::listen_systemd(reactor, 0, factory)
                          : torsion::listen_tcp(reactor, port, factory, options);
  std::optional<torsion::PidFile> pidfile;
  if (!pidfile_path.empty()) pidfile.emplace(pidfile_path);
  if (!user.empty()) torsion::drop_privileges(user, group);  // the port is bound: root no more
  if (systemd) torsion::notify_systemd_ready(reactor);
  const std::string where = listening->get_host().to_string();
  torsion::log(torsion::LogLevel::info, "echo_server: listening on " + where);
  std::printf("listening on %s\n", where.c_str());
  std::fflush(stdout);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
