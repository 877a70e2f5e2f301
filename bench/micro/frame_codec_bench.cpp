// Frame codec: decoding client frames and encoding msg frames, the two
// per-message costs on the server's hot path, and decoding msg frames, the
// SDK's.
#include <benchmark/benchmark.h>

#include "protocol/frame_codec.hpp"

namespace {
using namespace herald::protocol;

void BM_DecodeAck(benchmark::State& state) {
  const std::string text = R"({"type":"ack","seq":123456})";
  for (auto _ : state) benchmark::DoNotOptimize(decode_client_frame(text));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAck);

void BM_DecodePing(benchmark::State& state) {
  const std::string text = R"({"type":"ping","id":7,"ts":1764000000000})";
  for (auto _ : state) benchmark::DoNotOptimize(decode_client_frame(text));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodePing);

void BM_EncodeMsg(benchmark::State& state) {
  MsgFrame m{121, "ord-77-shipped", "order.status",
             std::string(static_cast<std::size_t>(state.range(0)), 'x'), 1764000000123, 1,
             "4bf92f3577b34da6a3ce929d0e0e4736"};
  m.data_json = "\"" + m.data_json + "\"";
  for (auto _ : state) benchmark::DoNotOptimize(encode(m));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m.data_json.size()));
}
BENCHMARK(BM_EncodeMsg)->Arg(64)->Arg(1024)->Arg(16384);

void BM_DecodeMsg(benchmark::State& state) {
  const std::string text = encode(MsgFrame{121, "ord-77-shipped", "order.status",
                                           R"({"order":"77","state":"shipped","items":[1,2,3],"eta":1764000000123})",
                                           1764000000123, 1, "4bf92f3577b34da6a3ce929d0e0e4736"});
  for (auto _ : state) benchmark::DoNotOptimize(decode_server_frame(text));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeMsg);

void BM_EncodeWelcome(benchmark::State& state) {
  WelcomeFrame w{"c-9f2", "u1", "d1", "e7c1", 130, 121, true, 25000, 75000, 64, 1764000000000};
  for (auto _ : state) benchmark::DoNotOptimize(encode(w));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeWelcome);

}  // namespace
