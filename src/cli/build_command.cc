// `fpgaserve build-server` (the FirmwareBuilder service) and `fpgaserve build
// submit|status|list|cancel|get` (its client). docs/build-service.md.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "build_service.grpc.pb.h"
#include "cli/app.h"
#include "cli/build_client.h"
#include "cli/grpc_cli.h"
#include "cli/commands.h"
#include "core/file_io.h"
#include "core/sha256.h"
#include "core/text.h"
#include "firmware/bundle.h"
#include "importers/format.h"
#include "services/build/build_server.h"
#include "services/grpc_status.h"
#include "store/object_store.h"

namespace fpgaserve::cli {
namespace {

namespace fs = std::filesystem;
namespace pb = ::fpgaserve::v1;
using json = nlohmann::json;


// ---- build-server ----

struct ServerFlags {
  std::string listen = "127.0.0.1:50051";
  std::string store;
  std::string db;
  std::string work_dir;
  int workers = 1;
  long build_timeout_s = 7200;
  std::uint64_t max_model_bytes = 256ULL << 20;
  ServerFileFlags files;
};

int RunServer(const ServerFlags& f) {
  build::BuildServerOptions o;
  o.listen = f.listen;
  o.store_uri = f.store;
  o.db_path = f.db;
  o.work_dir = f.work_dir;
  o.workers = f.workers;
  o.build_timeout = std::chrono::seconds(f.build_timeout_s);
  o.max_model_bytes = f.max_model_bytes;
  o.ready_file = f.files.ready_file;
  auto secrets = ReadServerSecrets(f.files.token_file, f.files.tls_cert, f.files.tls_key);
  if (!secrets.ok()) return ReportError(secrets.status(), std::cerr);
  o.token = secrets->token;
  o.tls_cert_pem = secrets->tls_cert_pem;
  o.tls_key_pem = secrets->tls_key_pem;
  const sigset_t signals = BlockStopSignals();
  auto server = build::BuildServer::Start(o);
  if (!server.ok()) return ReportError(server.status(), std::cerr);
  std::cerr << "fpgaserve build-server: listening on port " << (*server)->port() << ", store " << f.store
            << ", " << f.workers << " worker(s)" << (o.token.empty() ? "" : ", bearer token required")
            << (o.tls_cert_pem.empty() ? "" : ", TLS") << std::endl;
  const int sig = WaitForStopSignal(signals);
  std::cerr << "fpgaserve build-server: signal " << sig << ", shutting down" << std::endl;
  (*server)->Shutdown();
  return kExitOk;
}

// ---- client ----

struct ClientFlags {
  std::string server = "127.0.0.1:50051";
  std::string token_file;
  std::string tls_ca;  // set: TLS with this CA
  bool json = false;
};

void AddClientFlags(CLI::App& cmd, ClientFlags& f) {
  cmd.add_option("--server", f.server, "Build server address (host:port)")->capture_default_str();
  cmd.add_option("--token-file", f.token_file, "File holding the server's bearer token");
  cmd.add_option("--tls-ca", f.tls_ca, "Connect with TLS, trusting this CA certificate (PEM)");
  cmd.add_flag("--json", f.json, "Print JSON");
}




json BuildJson(const pb::Build& b) {
  json arts = json::array();
  for (const auto& a : b.artifacts()) arts.push_back({{"key", a.key()}, {"size", a.size()}, {"sha256", a.sha256()}});
  return {{"build_id", b.build_id()},       {"state", BuildStateName(b.state())}, {"stage", b.stage()},
          {"percent", b.percent()},         {"message", b.message()},        {"error_code", b.error_code()},
          {"model_uri", b.model_uri()},     {"model_sha256", b.model_sha256()}, {"board", b.board()},
          {"engine", b.engine()},           {"precision", b.precision()},    {"reuse", b.reuse()},
          {"interface", b.interface()},     {"name", b.name()},
          {"labels", std::map<std::string, std::string>(b.labels().begin(), b.labels().end())},
          {"attempts", b.attempts()},       {"created_ms", b.created_ms()},  {"started_ms", b.started_ms()},
          {"finished_ms", b.finished_ms()}, {"store_uri", b.store_uri()},    {"artifacts", arts}};
}


int ExitFor(pb::BuildState s) { return s == pb::SUCCEEDED ? kExitOk : kExitInternal; }



struct SubmitFlags {
  ClientFlags client;
  std::string model;
  std::string board;
  std::string engine = "native";
  std::string precision;
  int reuse = 0;
  std::string interface;
  std::string name;
  std::vector<std::string> labels;
  std::string store;
  bool wait = false;
};

Result<BuildClient> Connect(const ClientFlags& f) { return ConnectBuildServer(f.server, f.token_file, f.tls_ca); }

// Follows a build until it ends: a progress bar on a terminal, one line per event otherwise.
Result<pb::BuildState> Follow(const BuildClient& c, const std::string& id, bool quiet) {
  const bool tty = !quiet && ::isatty(STDERR_FILENO);
  auto last = WatchBuild(c, id, [&](const pb::BuildEvent& e) {
    if (tty) {
      const int width = 30, filled = std::clamp(e.percent(), 0, 100) * width / 100;
      std::cerr << "\r[" << std::string(static_cast<std::size_t>(filled), '#')
                << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << std::setw(3) << e.percent()
                << "% " << std::left << std::setw(12) << BuildStateName(e.state()) << std::right << " "
                << e.stage().substr(0, 20) << "\x1b[K" << std::flush;
    } else if (!quiet) {
      std::cerr << BuildStateName(e.state()) << " " << e.percent() << "%" << (e.stage().empty() ? "" : " " + e.stage())
                << (e.message().empty() ? "" : ": " + e.message()) << "\n";
    }
  });
  if (tty) std::cerr << "\n";
  return last;
}

int Submit(const SubmitFlags& f) {
  auto c = Connect(f.client);
  if (!c.ok()) return ReportError(c.status(), std::cerr);
  std::string uri = f.model;
  const bool remote = IsModelUri(uri);
  if (!remote) {
    // A local file goes to the store first (the server's own, unless --store names another).
    std::string store = f.store;
    if (store.empty()) {
      pb::HealthResponse h;
      auto ctx = c->Context();
      auto st = c->stub->Health(ctx.get(), pb::HealthRequest(), &h);
      if (!st.ok()) return ReportError(c->FromGrpc(st), std::cerr);
      store = h.store_uri();
    }
    auto up = UploadModel(f.model, store);
    if (!up.ok()) return ReportError(up.status().WithContext("uploading " + f.model), std::cerr);
    uri = *up;
    if (!f.client.json) std::cerr << "uploaded " << f.model << " to " << uri << "\n";
  }
  pb::SubmitBuildRequest req;
  req.set_model_uri(uri);
  req.set_board(f.board);
  req.set_engine(f.engine);
  req.set_precision(f.precision);
  req.set_reuse(f.reuse);
  req.set_interface(f.interface);
  req.set_name(f.name);
  for (const auto& l : f.labels) {
    const auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      return ReportError(InvalidArgument("--label '" + l + "': expected key=value"), std::cerr);
    }
    (*req.mutable_labels())[l.substr(0, eq)] = l.substr(eq + 1);
  }
  pb::SubmitBuildResponse resp;
  auto ctx = c->Context(std::chrono::seconds(120));
  auto st = c->stub->SubmitBuild(ctx.get(), req, &resp);
  if (!st.ok()) {
    Status err = c->FromGrpc(st);
    return ReportError(remote ? err : err.WithContext(f.model), std::cerr);
  }
  pb::BuildState state = resp.state();
  if (f.wait && !IsTerminalBuildState(state)) {
    auto followed = Follow(*c, resp.build_id(), f.client.json);
    if (!followed.ok()) return ReportError(followed.status(), std::cerr);
    state = *followed;
  }
  if (f.client.json) {
    std::cout << json{{"build_id", resp.build_id()}, {"state", BuildStateName(state)}, {"cache_hit", resp.cache_hit()}}.dump()
              << "\n";
  } else {
    std::cout << resp.build_id() << " " << BuildStateName(state) << (resp.cache_hit() ? " (cache hit)" : "") << "\n";
  }
  if (f.wait) {
    if (state != pb::SUCCEEDED) {
      pb::Build b;
      pb::GetBuildRequest g;
      g.set_build_id(resp.build_id());
      auto gctx = c->Context();
      if (c->stub->GetBuild(gctx.get(), g, &b).ok() && !f.client.json) {
        std::cerr << "fpgaserve: build " << BuildStateName(b.state()) << ": " << b.error_code() << " " << b.message() << "\n";
      }
    }
    return ExitFor(state);
  }
  return kExitOk;
}



}  // namespace

void RegisterBuildServer(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("build-server", "Run the firmware build service (gRPC fpgaserve.v1.FirmwareBuilder)");
  auto f = std::make_shared<ServerFlags>();
  cmd->add_option("--listen", f->listen, "host:port to listen on (port 0: any free port)")->capture_default_str();
  cmd->add_option("--store", f->store, "Where artifacts go: file:///dir or s3://bucket[/prefix]")->required();
  cmd->add_option("--db", f->db, "The SQLite job table (created when missing)")->required();
  cmd->add_option("--work-dir", f->work_dir, "Model cache and build directories (default: <db>.work)");
  cmd->add_option("--workers", f->workers, "Builds run at once")->capture_default_str();
  cmd->add_option("--build-timeout", f->build_timeout_s, "Seconds a build may run")->capture_default_str();
  cmd->add_option("--max-model-bytes", f->max_model_bytes, "Largest model accepted")->capture_default_str();
  AddServerFileFlags(*cmd, f->files);
  cmd->callback([f, exit_code] { *exit_code = RunServer(*f); });
}

void RegisterBuild(CLI::App& app, int* exit_code) {
  auto* build = app.add_subcommand("build", "Firmware-as-a-Service client: submit, status, list, cancel, get");
  build->require_subcommand(1);

  auto sf = std::make_shared<SubmitFlags>();
  auto* submit = build->add_subcommand("submit", "Submit a model (a local file is uploaded to the store first)");
  submit->add_option("model", sf->model, "Model: a local file, or s3://, file://, http(s):// URI")->required();
  submit->add_option("--board", sf->board, "Target board (fpgaserve boards)")->required();
  submit->add_option("--engine", sf->engine, "native, bondmachine or hls4ml")->capture_default_str();
  submit->add_option("--precision", sf->precision, "fixed<W,I>, float32, ... (default fixed<16,6>)");
  submit->add_option("--reuse", sf->reuse, "Reuse factor (0: auto, the smallest that fits the board)")->capture_default_str();
  submit->add_option("--interface", sf->interface, "stream, axis or axilite (default: the board's)");
  submit->add_option("--name", sf->name, "A name for the build");
  submit->add_option("--label", sf->labels, "key=value (repeatable)");
  submit->add_option("--store", sf->store, "Upload a local model here instead of the server's store");
  submit->add_flag("--wait", sf->wait, "Follow the build until it ends (exit 0 only when it succeeds)");
  AddClientFlags(*submit, sf->client);
  submit->callback([sf, exit_code] { *exit_code = Submit(*sf); });

  struct IdFlags {
    ClientFlags client;
    std::string id;
    std::string out;
  };
  auto status_f = std::make_shared<IdFlags>();
  auto* status = build->add_subcommand("status", "Show a build");
  status->add_option("build_id", status_f->id)->required();
  AddClientFlags(*status, status_f->client);
  status->callback([status_f, exit_code] {
    auto c = Connect(status_f->client);
    if (!c.ok()) return void(*exit_code = ReportError(c.status(), std::cerr));
    auto b = GetBuild(*c, status_f->id);
    if (!b.ok()) return void(*exit_code = ReportError(b.status(), std::cerr));
    if (status_f->client.json) {
      std::cout << BuildJson(*b).dump() << "\n";
    } else {
      std::cout << b->build_id() << " " << BuildStateName(b->state()) << " " << b->percent() << "%"
                << (b->stage().empty() ? "" : " " + b->stage()) << "\n  board " << b->board() << ", engine "
                << b->engine() << ", precision " << b->precision() << ", reuse " << b->reuse() << "\n  "
                << (b->error_code().empty() ? "" : b->error_code() + ": ") << b->message() << "\n";
    }
    *exit_code = kExitOk;
  });

  auto cancel_f = std::make_shared<IdFlags>();
  auto* cancel = build->add_subcommand("cancel", "Cancel a queued or running build");
  cancel->add_option("build_id", cancel_f->id)->required();
  AddClientFlags(*cancel, cancel_f->client);
  cancel->callback([cancel_f, exit_code] {
    auto c = Connect(cancel_f->client);
    if (!c.ok()) return void(*exit_code = ReportError(c.status(), std::cerr));
    pb::CancelBuildRequest req;
    req.set_build_id(cancel_f->id);
    pb::Build b;
    auto ctx = c->Context();
    auto st = c->stub->CancelBuild(ctx.get(), req, &b);
    if (!st.ok()) return void(*exit_code = ReportError(c->FromGrpc(st), std::cerr));
    if (cancel_f->client.json) {
      std::cout << BuildJson(b).dump() << "\n";
    } else {
      std::cout << b.build_id() << " " << BuildStateName(b.state()) << "\n";
    }
    *exit_code = kExitOk;
  });

  auto get_f = std::make_shared<IdFlags>();
  auto* get = build->add_subcommand("get", "Download a succeeded build's bundle and verify it");
  get->add_option("build_id", get_f->id)->required();
  get->add_option("-o,--out", get_f->out, "Directory to write the bundle to (new or empty)")->required();
  AddClientFlags(*get, get_f->client);
  get->callback([get_f, exit_code] {
    auto c = Connect(get_f->client);
    if (!c.ok()) return void(*exit_code = ReportError(c.status(), std::cerr));
    auto b = GetBuild(*c, get_f->id);
    if (!b.ok()) return void(*exit_code = ReportError(b.status(), std::cerr));
    if (Status st = DownloadBuild(*b, get_f->out); !st.ok()) return void(*exit_code = ReportError(st, std::cerr));
    if (get_f->client.json) {
      std::cout << json{{"build_id", b->build_id()}, {"dir", get_f->out}, {"files", b->artifacts_size()}, {"verified", true}}.dump()
                << "\n";
    } else {
      std::cout << "wrote " << b->artifacts_size() << " files to " << get_f->out << " (sha256 verified)\n";
    }
    *exit_code = kExitOk;
  });

  struct ListFlags {
    ClientFlags client;
    std::string state;
    std::string board;
    std::vector<std::string> labels;
    int page_size = 50;
    std::string page_token;
  };
  auto list_f = std::make_shared<ListFlags>();
  auto* list = build->add_subcommand("list", "List builds, newest first");
  list->add_option("--state", list_f->state, "QUEUED, FETCHING, ..., SUCCEEDED, FAILED, CANCELLED");
  list->add_option("--board", list_f->board, "Only this board");
  list->add_option("--label", list_f->labels, "key=value (repeatable; all must match)");
  list->add_option("--page-size", list_f->page_size, "Builds per page")->capture_default_str();
  list->add_option("--page-token", list_f->page_token, "The next_page_token of a previous page");
  AddClientFlags(*list, list_f->client);
  list->callback([list_f, exit_code] {
    pb::ListBuildsRequest req;
    if (!list_f->state.empty()) {
      pb::BuildState s;
      if (!pb::BuildState_Parse(list_f->state, &s) || s == pb::BUILD_STATE_UNSPECIFIED) {
        return void(*exit_code = ReportError(InvalidArgument("--state " + list_f->state +
                                                             ": expected QUEUED, FETCHING, COMPILING, SYNTHESIZING, "
                                                             "PLACING, PACKING, UPLOADING, SUCCEEDED, FAILED or CANCELLED"),
                                             std::cerr));
      }
      req.set_state(s);
    }
    req.set_board(list_f->board);
    for (const auto& l : list_f->labels) {
      const auto eq = l.find('=');
      if (eq == std::string::npos || eq == 0) {
        return void(*exit_code = ReportError(InvalidArgument("--label '" + l + "': expected key=value"), std::cerr));
      }
      (*req.mutable_labels())[l.substr(0, eq)] = l.substr(eq + 1);
    }
    req.set_page_size(list_f->page_size);
    req.set_page_token(list_f->page_token);
    auto c = Connect(list_f->client);
    if (!c.ok()) return void(*exit_code = ReportError(c.status(), std::cerr));
    pb::ListBuildsResponse resp;
    auto ctx = c->Context();
    auto st = c->stub->ListBuilds(ctx.get(), req, &resp);
    if (!st.ok()) return void(*exit_code = ReportError(c->FromGrpc(st), std::cerr));
    if (list_f->client.json) {
      json arr = json::array();
      for (const auto& b : resp.builds()) arr.push_back(BuildJson(b));
      std::cout << json{{"builds", arr}, {"next_page_token", resp.next_page_token()}}.dump() << "\n";
    } else {
      for (const auto& b : resp.builds()) {
        std::cout << b.build_id() << "  " << std::left << std::setw(12) << BuildStateName(b.state()) << std::right << " "
                  << b.board() << " " << b.engine() << " " << b.name() << "\n";
      }
      if (!resp.next_page_token().empty()) std::cout << "next page: --page-token " << resp.next_page_token() << "\n";
    }
    *exit_code = kExitOk;
  });
}

}  // namespace fpgaserve::cli
