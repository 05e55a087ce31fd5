#include "replicator/session/agent.h"

#include <fmt/format.h>

#include <optional>

#include "replicator/log.h"
#include "replicator/session/agent_session.h"
#include "replicator/stop_signal.h"
#include "transport/error.h"

namespace imgcast::replicator {

namespace tp = transport;

ExitCode run_agent(const AgentOptions& options, const ContextFactory& make_context) {
  install_stop_handlers();
  const std::optional<JobSecret> secret = JobSecret::parse(options.secret_line);
  if (!secret) {
    log().error(
        "agent rank {}: no valid job secret on standard input (imgcast agent is started "
        "by imgcast replicate, not by hand)",
        options.rank);
    return ExitCode::kUsage;
  }
  try {
    AgentSession session(options, *secret, make_context);
    return session.run();
  } catch (const ImgcastError& error) {
    log().error("agent rank {} on {}: {}", options.rank, options.host, error.what());
    return error.code();
  } catch (const tp::Error& error) {
    log().error("agent rank {} on {}: {}", options.rank, options.host, error.what());
    return ExitCode::kTransferFailed;
  }
}

}  // namespace imgcast::replicator
