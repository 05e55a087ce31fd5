#include "replicator/plan/reparent_planner.h"

#include <stdexcept>

namespace imgcast::replicator {

ReparentPlanner::ReparentPlanner(const Topology& topology, std::chrono::milliseconds answer_timeout)
    : answer_timeout_(answer_timeout),
      parent_(topology.trees(), std::vector<int>(topology.size(), -1)),
      nodes_(topology.size()),
      reparents_(topology.size(), 0) {
  if (topology.trees() > kMaxTrees || topology.root() != 0) {
    throw std::invalid_argument("the re-parenting planner takes at most two trees rooted at 0");
  }
  for (int tree = 0; tree < topology.trees(); ++tree) {
    for (int place = 1; place < topology.size(); ++place) {
      parent_[tree][place] = topology.parent(place, tree);
    }
  }
  nodes_[0].ready = true;
}

bool ReparentPlanner::serves(int place) const {
  const Node& node = nodes_[place];
  return place == 0 || (node.ready && !node.failed && !node.left);
}

ReparentPlanner::Decision ReparentPlanner::orphaned(int place, int tree, Clock::time_point now) {
  Decision decision;
  std::vector<int>& parent = parent_[tree];
  decision.lost = parent[place];
  if (++reparents_[place] > kMaxReparents) {
    decision.kind = Decision::Kind::kGiveUp;
    return decision;
  }
  nodes_[decision.lost].left = true;
  int adopter = decision.lost;
  do {
    adopter = adopter == 0 ? 0 : parent[adopter];
  } while (adopter != 0 && !serves(adopter));
  parent[place] = adopter;
  decision.adopter = adopter;
  if (adopter == 0) {
    decision.kind = Decision::Kind::kRootAdopts;
    nodes_[place].waiting_for[tree] = -1;
    return decision;
  }
  decision.kind = Decision::Kind::kAskAdopter;
  nodes_[place].waiting_for[tree] = adopter;
  nodes_[place].asked_at[tree] = now;
  return decision;
}

bool ReparentPlanner::adopted(int adopter, int orphan, int tree) {
  // adopter <= 0: a node outside the transfer (no place), or the root, which is never asked.
  if (adopter <= 0 || orphan <= 0 || orphan >= static_cast<int>(nodes_.size()) || tree >= trees()) {
    return false;
  }
  Node& node = nodes_[orphan];
  if (node.failed || node.waiting_for[tree] != adopter) {
    return false;
  }
  node.waiting_for[tree] = -1;
  return true;
}

void ReparentPlanner::ready(int place) { nodes_[place].ready = true; }

std::vector<ReparentPlanner::Retry> ReparentPlanner::failed(int place) {
  nodes_[place].failed = true;
  std::vector<Retry> retries;
  for (int orphan = 1; orphan < static_cast<int>(nodes_.size()); ++orphan) {
    for (int tree = 0; tree < trees(); ++tree) {
      Node& node = nodes_[orphan];
      if (node.waiting_for[tree] == place && !node.failed) {
        node.waiting_for[tree] = -1;
        retries.push_back({orphan, tree, place});
      }
    }
  }
  return retries;
}

std::vector<ReparentPlanner::Retry> ReparentPlanner::overdue(Clock::time_point now) {
  std::vector<Retry> retries;
  for (int orphan = 1; orphan < static_cast<int>(nodes_.size()); ++orphan) {
    for (int tree = 0; tree < trees(); ++tree) {
      Node& node = nodes_[orphan];
      const int adopter = node.waiting_for[tree];
      if (adopter < 0 || node.failed || now - node.asked_at[tree] <= answer_timeout_) {
        continue;
      }
      node.waiting_for[tree] = -1;
      retries.push_back({orphan, tree, adopter});
    }
  }
  return retries;
}

}  // namespace imgcast::replicator
