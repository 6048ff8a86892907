// Per-stage timings of the encoder and decoder, for the benchmark's
// breakdown. The stages run unfused here (each over the whole image), so the
// sum is a little more than the fused pipeline's time; the split is the point.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "codec.hpp"

namespace dcts {

using StageTimes = std::vector<std::pair<std::string, double>>;  // (stage, seconds)

StageTimes profile_encode(const uint8_t* image, const Geometry& g, const CodecParams& prm,
                          const int32_t* seq);
StageTimes profile_decode(const int32_t* channel, const int32_t* position, const int32_t* value,
                          int64_t n, const Geometry& g, const CodecParams& prm, uint8_t* image);

}  // namespace dcts
