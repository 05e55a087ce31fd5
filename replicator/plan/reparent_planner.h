// ReparentPlanner: who adopts a node that lost its parent. Pure planning, no I/O: the root's
// session tells it what happened (a node lost its parent, an adopter answered, a node failed, a
// node became ready) and does what it decides (sends Adopt, Reparent or Abort).
//
// Places are positions in the transfer's tree (0: the root, which always serves). The nearest
// ancestor of the lost parent that still serves adopts the orphan; the lost parent itself is
// passed over even when it lives (its link to the orphan failed) and serves no one from then on.
// Ancestors are never in the orphan's own subtree, so no cycle can form. In a two-tree topology
// the climb stays in the tree where the parent was lost. An adopter that fails, or does not
// answer within the answer timeout, is passed over in turn (it is the orphan's parent of record
// by then, so the next climb starts above it).
#pragma once

#include <array>
#include <chrono>
#include <vector>

#include "replicator/plan/topology.h"

namespace imgcast::replicator {

class ReparentPlanner {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kMaxTrees = 2;
  // An orphan gets at most this many new parents; past it, something is wrong with the node.
  static constexpr int kMaxReparents = 8;

  // Over the topology's places; none but the root serves until ready(). REQUIRES:
  // topology.trees() <= kMaxTrees, topology.root() == 0.
  ReparentPlanner(const Topology& topology, std::chrono::milliseconds answer_timeout);

  struct Decision {
    enum class Kind {
      kRootAdopts,  // the root serves it now: tell the orphan (Reparent) at once
      kAskAdopter,  // ask `adopter` (Adopt); tell the orphan when it answers (adopted())
      kGiveUp,      // it lost too many parents: it fails
    };
    Kind kind = Kind::kGiveUp;
    int lost = -1;     // the parent it lost
    int adopter = -1;  // its new parent (kRootAdopts: 0)
  };

  // The node at `place` lost its parent in `tree`. REQUIRES: 0 < place < size, tree < trees.
  Decision orphaned(int place, int tree, Clock::time_point now);
  // `adopter` answered Adopt for `orphan` in `tree`: true when the orphan was waiting for just
  // that answer (tell it to reparent); it waits no more.
  bool adopted(int adopter, int orphan, int tree);

  // A place that serves its children: from its Ready on, until it fails or is left.
  void ready(int place);

  struct Retry {
    int orphan = -1;
    int tree = 0;
    int adopter = -1;  // the one that failed or did not answer
  };
  // `place` failed: it serves no one, and the orphans waiting for it need another adopter (call
  // orphaned() for each).
  std::vector<Retry> failed(int place);
  // Orphans whose adopter has not answered within the answer timeout (call orphaned() for each).
  std::vector<Retry> overdue(Clock::time_point now);

  int parent(int place, int tree) const { return parent_[tree][place]; }
  bool serves(int place) const;
  // New parents given (an orphan that was given up on counts the last try too).
  int reparents(int place) const { return reparents_[place]; }
  int trees() const noexcept { return static_cast<int>(parent_.size()); }

 private:
  struct Node {
    bool ready = false;
    bool failed = false;
    bool left = false;  // a child gave it up (dead, silent, corrupting): it adopts no one
    std::array<int, kMaxTrees> waiting_for{-1, -1};  // per tree: the adopter asked
    std::array<Clock::time_point, kMaxTrees> asked_at{};
  };

  std::chrono::milliseconds answer_timeout_;
  std::vector<std::vector<int>> parent_;  // by tree, then place: -1 for the root
  std::vector<Node> nodes_;
  std::vector<int> reparents_;
};

}  // namespace imgcast::replicator
