// A destination pattern names one path per node.
#include "replicator/image/destination.h"

#include <gtest/gtest.h>

#include "replicator/errors.h"

namespace imgcast::replicator {
namespace {

TEST(Destination, ExpandsRankAndHost) {
  EXPECT_EQ(expand_destination("/tmp/%h/n%r/app.sif", 7, "node7"), "/tmp/node7/n7/app.sif");
  EXPECT_EQ(expand_destination("/tmp/100%%.sif", 1, "h"), "/tmp/100%.sif");
  EXPECT_EQ(expand_destination("/tmp/plain.sif", 1, "h"), "/tmp/plain.sif");
  EXPECT_THROW(expand_destination("/tmp/%x", 1, "h"), InputError);
  EXPECT_THROW(expand_destination("/tmp/%", 1, "h"), InputError);
}

}  // namespace
}  // namespace imgcast::replicator
