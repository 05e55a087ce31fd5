#include "replicator/session/replicate.h"

#include "replicator/session/root_session.h"
#include "replicator/stop_signal.h"

namespace imgcast::replicator {

Report replicate(const ReplicateOptions& options, const ContextFactory& make_context) {
  install_stop_handlers();
  RootSession session(options, make_context);
  return session.run();
}

}  // namespace imgcast::replicator
