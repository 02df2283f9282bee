#include "core/subprocess.h"

#include <gtest/gtest.h>

namespace fpgaserve {
namespace {

TEST(SubprocessTest, CapturesOutputAndExitCode) {
  auto r = RunSubprocess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->success());
}

TEST(SubprocessTest, ArgumentsAreNotInterpretedByAShell) {
  auto r = RunSubprocess({"echo", "$(id); rm -rf /nonexistent"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_text, "$(id); rm -rf /nonexistent\n");
}

TEST(SubprocessTest, StdinEnvAndWorkingDir) {
  SubprocessOptions o;
  o.stdin_data = "hello";
  o.env_set["FPGASERVE_TEST_VAR"] = "42";
  o.working_dir = "/";
  auto r = RunSubprocess({"sh", "-c", "cat; echo \" $FPGASERVE_TEST_VAR\"; pwd"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_text, "hello 42\n/\n");
}

TEST(SubprocessTest, TimeoutKillsTheChild) {
  SubprocessOptions o;
  o.timeout = std::chrono::milliseconds(200);
  auto r = RunSubprocess({"sleep", "30"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->success());
}

TEST(SubprocessTest, MissingProgramIsNotFound) {
  auto r = RunSubprocess({"fpgaserve-no-such-program"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fpgaserve
