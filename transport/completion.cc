#include "transport/completion.h"

#include <type_traits>

#include "transport/endpoint.h"  // PeerAccepted destroys endpoints

namespace imgcast::transport {

void forget_completions(std::vector<Completion>& queue, const Endpoint* endpoint) {
  std::erase_if(queue, [endpoint](const Completion& c) {
    return std::visit(
        [endpoint](const auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, WriteDone>)
            return e.endpoint == endpoint;
          if constexpr (std::is_same_v<T, WriteArrived> || std::is_same_v<T, ControlArrived>) {
            return e.from == endpoint;
          }
          if constexpr (std::is_same_v<T, PeerFailed>)
            return e.peer == endpoint;
          return false;
        },
        c);
  });
}

}  // namespace imgcast::transport
