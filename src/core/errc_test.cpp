#include "core/errc.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <boost/json.hpp>

namespace herald {
namespace {

TEST(ErrorTable, EveryCodeIsDocumentedWithItsStatus) {
  std::ifstream in(std::string(HERALD_SOURCE_DIR) + "/docs/errors.md");
  ASSERT_TRUE(in) << "docs/errors.md missing";
  std::stringstream doc;
  doc << in.rdbuf();
  std::istringstream rows{std::string(all_error_names_for_docs())};
  std::string status, name;
  int count = 0;
  while (rows >> status >> name) {
    EXPECT_NE(doc.str().find("| " + status + " " + name + " | `" + name + "` |"), std::string::npos) << name;
    ++count;
  }
  EXPECT_EQ(count, 15);
}

TEST(ErrorTable, BodiesHaveTheProtocolShape) {
  auto v = boost::json::parse(error_body(errc::bad_request, "data is required", "data")).as_object();
  EXPECT_EQ(v.at("error").at("code"), "bad_request");
  EXPECT_EQ(v.at("error").at("message"), "data is required");
  EXPECT_EQ(v.at("error").at("field"), "data");
  auto w = boost::json::parse(error_body(errc::unauthorized, "missing token")).as_object();
  EXPECT_FALSE(w.at("error").as_object().contains("field"));
  EXPECT_EQ(error_info(errc::too_many_connections).http_status, 429);
  EXPECT_EQ(error_info(errc::draining).http_status, 503);
}

}  // namespace
}  // namespace herald
