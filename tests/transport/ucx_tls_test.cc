// check_tls: which UCX_TLS values imgcast refuses before UCX starts (transport/ucx/ucx_tls.h).
#include "transport/ucx/ucx_tls.h"

#include <gtest/gtest.h>

namespace imgcast::transport::ucx {
namespace {

TEST(UcxTls, UnsetOrWithACarrierIsUsable) {
  for (const char* tls : {static_cast<const char*>(nullptr), "", "all", "tcp", "sm,tcp", "shm,tcp",
                          "rc,sm", "dc_x,self", "ud_v"}) {
    const TlsCheck check = check_tls(tls, false);
    EXPECT_TRUE(check.problem.empty()) << (tls ? tls : "(unset)") << ": " << check.problem;
  }
}

TEST(UcxTls, SharedMemoryAloneIsRefusedNamingWhatToAdd) {
  for (const char* tls : {"sm", "shm", "posix,sysv,cma", "self,sm"}) {
    const TlsCheck check = check_tls(tls, true);
    EXPECT_NE(check.problem.find(std::string("UCX_TLS=") + tls), std::string::npos) << tls;
    EXPECT_NE(check.problem.find("add tcp"), std::string::npos) << check.problem;
    EXPECT_EQ(check.problem.find('\n'), std::string::npos) << "one line";
  }
}

TEST(UcxTls, ExcludingTcpNeedsAnRdmaDevice) {
  EXPECT_FALSE(check_tls("^tcp", false).problem.empty());
  EXPECT_TRUE(check_tls("^tcp", true).problem.empty());
  EXPECT_TRUE(check_tls("^sm", false).problem.empty());
}

TEST(UcxTls, SaysWhetherTcpSegmentsMatter) {
  EXPECT_TRUE(check_tls(nullptr, false).tcp);
  EXPECT_TRUE(check_tls("sm,tcp", false).tcp);
  EXPECT_FALSE(check_tls("rc,sm", true).tcp);
  EXPECT_FALSE(check_tls("^tcp", true).tcp);
  EXPECT_TRUE(check_tls("^sm", false).tcp);
}

}  // namespace
}  // namespace imgcast::transport::ucx
