#include "protocol/frame_codec.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace herald::protocol {
namespace {

TEST(FrameCodec, DecodesAckBySeqAndUpto) {
  auto one = decode_client_frame(R"({"type":"ack","seq":121})");
  ASSERT_TRUE(one);
  EXPECT_EQ(std::get<AckFrame>(*one).seq, 121u);
  auto all = decode_client_frame(R"({"type":"ack","upto":130,"extra":true})");
  ASSERT_TRUE(all);
  EXPECT_EQ(std::get<AckFrame>(*all).upto, 130u);
}

TEST(FrameCodec, AckWithoutUsableSeqIsAnErrorFrameNotAClose) {
  auto r = decode_client_frame(R"({"type":"ack","seq":"x"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<UnusableFrame>(*r).error_code, "invalid_frame");
}

TEST(FrameCodec, RefusesFramesThatCloseWith4003) {
  EXPECT_EQ(decode_client_frame("not json").error(), FrameError::not_json);
  EXPECT_EQ(decode_client_frame("[1,2]").error(), FrameError::not_object);
  EXPECT_EQ(decode_client_frame(R"({"seq":1})").error(), FrameError::missing_type);
  EXPECT_EQ(decode_client_frame(R"({"type":5})").error(), FrameError::type_not_string);
  EXPECT_EQ(decode_client_frame("").error(), FrameError::not_json);
}

TEST(FrameCodec, AFrameIsOneJsonValueWithNothingButWhitespaceAfterIt) {
  EXPECT_TRUE(decode_client_frame("{\"type\":\"ping\"} \n\t ").has_value());
  for (const char* text : {R"({"type":"ping"} x)", R"({"type":"ping"}{"type":"ping"})", R"({"type":"ping"}})",
                           R"({"type":"ping"},)", R"({"type":"ack","seq":1} 2)"}) {
    EXPECT_EQ(decode_client_frame(text).error(), FrameError::not_json) << text;
  }
  EXPECT_EQ(decode_client_frame(std::string(R"({"type":"ping"})") + '\0').error(), FrameError::not_json);
}

TEST(FrameCodec, NestingUpTo256LevelsIsJsonDeeperIsTooDeep) {
  const auto ping_with_id_depth = [](std::size_t arrays) {
    return R"({"type":"ping","id":)" + std::string(arrays, '[') + std::string(arrays, ']') + "}";
  };
  const auto ok = decode_client_frame(ping_with_id_depth(255));  // 256 levels with the frame
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(std::get<PingFrame>(*ok).id_json.size(), 510u);
  EXPECT_EQ(decode_client_frame(ping_with_id_depth(256)).error(), FrameError::too_deep);
  EXPECT_EQ(frame_error_message(FrameError::too_deep), "frame nests JSON deeper than 256 levels");
}

TEST(FrameCodec, UnknownTypeIsKeptForAnErrorFrame) {
  auto r = decode_client_frame(R"({"type":"subscribe"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<UnusableFrame>(*r).error_code, "unknown_type");
}

TEST(FrameCodec, PongEchoesPingIdAndTsExactlyAsSent) {
  auto r = decode_client_frame(R"({"type":"ping","id":1e999,"ts":123456789012345678901234567890})");
  ASSERT_TRUE(r);
  const auto& ping = std::get<PingFrame>(*r);
  EXPECT_EQ(encode(PongFrame{ping.id_json, ping.ts_json, 5}),
            R"({"type":"pong","id":1e999,"ts":123456789012345678901234567890,"server_time":5})");
  auto none = decode_client_frame(R"({"type":"ping"})");
  EXPECT_EQ(encode(PongFrame{std::get<PingFrame>(*none).id_json, "", 5}), R"({"type":"pong","server_time":5})");
}

TEST(FrameCodec, MsgDataIsDecodedAsSent) {
  auto r = decode_server_frame(R"({"type":"msg","seq":1,"id":"a","data":{"n":12345678901234567890123,"x":1e400},"ts":1,"attempt":1})");
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<MsgFrame>(*r).data_json, R"({"n":12345678901234567890123,"x":1e400})");
}

TEST(FrameCodec, PongEchoesPingIdAndTs) {
  auto r = decode_client_frame(R"({"type":"ping","id":7,"ts":1764000000000})");
  ASSERT_TRUE(r);
  const auto& ping = std::get<PingFrame>(*r);
  auto text = encode(PongFrame{ping.id_json, ping.ts_json, 1764000000004});
  auto v = boost::json::parse(text).as_object();
  EXPECT_EQ(v["type"], "pong");
  EXPECT_EQ(v["id"], 7);
  EXPECT_EQ(v["ts"], 1764000000000);
  EXPECT_EQ(v["server_time"], 1764000000004);
}

TEST(FrameCodec, MsgCarriesDataTextUnchanged) {
  MsgFrame m{121, "ord-77", "order.status", R"({"big":9007199254740993,"s":"\u00e9"})", 5, 2, "abc"};
  auto text = encode(m);
  EXPECT_NE(text.find(R"("data":{"big":9007199254740993,"s":"\u00e9"})"), std::string::npos);
  auto back = decode_server_frame(text);
  ASSERT_TRUE(back);
  const auto& d = std::get<MsgFrame>(*back);
  EXPECT_EQ(d.seq, 121u);
  EXPECT_EQ(d.attempt, 2u);
  EXPECT_EQ(d.event, "order.status");
  EXPECT_EQ(d.trace_id, "abc");
}

TEST(FrameCodec, WelcomeRoundTrips) {
  WelcomeFrame w{"c-1", "u1", "d1", "e7", 130, 121, false, 25000, 75000, 64, 99};
  auto back = decode_server_frame(encode(w));
  ASSERT_TRUE(back);
  const auto& d = std::get<WelcomeFrame>(*back);
  EXPECT_EQ(d.conn_id, "c-1");
  EXPECT_EQ(d.head_seq, 130u);
  EXPECT_EQ(d.resume_from, 121u);
  EXPECT_FALSE(d.recovered);
  EXPECT_EQ(d.max_inflight, 64u);
}

TEST(FrameCodec, QuotesAndEscapesStrings) {
  EXPECT_EQ(json_quote("a\"b\n"), R"("a\"b\n")");
}

// The SAX pass keeps `data` as written however it nests, and reads members
// in any order, next to members it does not know (which may nest too).
TEST(FrameCodec, MsgDataKeepsItsTextThroughNestingEscapesAndUnknownMembers) {
  auto r = decode_server_frame(
      R"({"x":{"data":5,"seq":9},"seq":2,"data":[1,{"a":[],"b\"q":"t\\u\n\u00e9","c":[true,false,null,{}]},-0.5e3],)"
      R"("type":"msg","id":"m\"1","attempt":3,"extra":[{"type":"nope"}]})");
  ASSERT_TRUE(r);
  const auto& m = std::get<MsgFrame>(*r);
  EXPECT_EQ(m.seq, 2u);
  EXPECT_EQ(m.id, "m\"1");
  EXPECT_EQ(m.attempt, 3u);
  EXPECT_EQ(m.data_json, "[1,{\"a\":[],\"b\\\"q\":\"t\\\\u\\n\xc3\xa9\",\"c\":[true,false,null,{}]},-0.5e3]");
  for (const char* data : {R"("a\"b")", "-0.5e3", "null", "{}", "[]", "true"}) {
    auto s = decode_server_frame(std::string(R"({"type":"msg","seq":1,"data":)") + data + "}");
    ASSERT_TRUE(s) << data;
    EXPECT_EQ(std::get<MsgFrame>(*s).data_json, data);
  }
}

TEST(FrameCodec, ServerFrameErrorsAreTheClientFrameErrors) {
  EXPECT_EQ(decode_server_frame(R"([{"type":"msg"}])").error(), FrameError::not_object);
  EXPECT_EQ(decode_server_frame(R"("msg")").error(), FrameError::not_object);
  EXPECT_EQ(decode_server_frame(R"({"seq":1,"data":{"type":"msg"}})").error(), FrameError::missing_type);
  EXPECT_EQ(decode_server_frame(R"({"type":["msg"]})").error(), FrameError::type_not_string);
  EXPECT_EQ(decode_server_frame(R"({"type":"msg",)").error(), FrameError::not_json);
  EXPECT_EQ(decode_server_frame(R"({"type":"msg"} x)").error(), FrameError::not_json);
}

}  // namespace
}  // namespace herald::protocol
