// ChunkedDecoder: the same body, trailers, verdict and (once done) stopping point however
// the input is cut; the body never exceeds max_body.

#include <string>

#include "tests/fuzz/fuzz_support.hpp"
#include "web/http_parser.hpp"

using namespace torsion::web;

namespace {

struct Sink : ChunkedDecoder::Sink {
  std::string body;
  void chunk_data(std::string_view d) override { body.append(d); }
};

struct Outcome {
  std::string body;
  std::vector<Headers::Field> trailers;
  int status = 0;
  bool done = false;
  std::size_t used = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome run(const std::vector<std::string_view>& chunks, const HttpLimits& limits) {
  ChunkedDecoder decoder(limits);
  Sink sink;
  Outcome o;
  for (std::string_view chunk : chunks) {
    const std::size_t used = decoder.feed(chunk, sink);
    FUZZ_CHECK(used <= chunk.size());
    o.used += used;
    if (used < chunk.size()) {
      FUZZ_CHECK(decoder.done() || decoder.failed());
      break;
    }
  }
  FUZZ_CHECK(sink.body.size() <= limits.max_body);
  o.body = sink.body;
  o.trailers = decoder.trailers().fields();
  o.status = decoder.failed() ? decoder.error()->status() : 0;
  o.done = decoder.done();
  if (!o.done) o.used = 0;  // where it stopped matters only at the end of the body
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  HttpLimits limits;
  limits.max_field_line = 8u + in.take_byte();
  limits.max_head = 32u + in.take_byte() * 4u;
  limits.max_fields = in.take_byte() % 16u;
  limits.max_body = in.take_byte() * 8u;
  limits.max_chunk_line = 2u + in.take_byte() % 64u;
  const std::uint8_t seed = in.take_byte();
  FUZZ_CHECK(run({in.data}, limits) == run(torsion::fuzz::cut(in.data, seed), limits));
  return 0;
}
