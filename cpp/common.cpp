#include "common.hpp"

namespace dcts {

void check_image_size(int64_t height, int64_t width, int64_t pixel_limit) {
    require(height >= 1 && width >= 1, [&] {
        return "image height and width must be >= 1, got " + std::to_string(height) + "x" +
               std::to_string(width);
    });
    // Both sides <= 2^32: the product fits 64 unsigned bits.
    const uint64_t side = uint64_t(1) << 32;
    const bool exact = uint64_t(height) <= side && uint64_t(width) <= side;
    const uint64_t pixels = exact ? uint64_t(height) * uint64_t(width) : ~uint64_t(0);
    auto over = [&](const std::string& limit) {
        return "image of " + std::to_string(height) + "x" + std::to_string(width) + " = " +
               (exact ? std::to_string(pixels) : std::string("over 2^32")) + " pixels exceeds " +
               limit;
    };
    if (pixel_limit >= 0 && pixels > uint64_t(pixel_limit))
        fail(over("dctsparse.MAX_IMAGE_PIXELS = " + std::to_string(pixel_limit)));
    if (pixels > uint64_t(kMaxPixels)) fail(over("the core's limit of 2^31 pixels"));
}

Geometry make_geometry(int64_t height, int64_t width, int planes, int block, bool sub420) {
    check_image_size(height, width, -1);
    require(planes == 1 || planes == 3, [&] {
        return "number of planes must be 1 or 3, got " + std::to_string(planes);
    });
    require(block >= kMinBlock && block <= kMaxBlock, [&] {
        return "block_size must be in [2, 64], got " + std::to_string(block);
    });
    Geometry g;
    g.height = height;
    g.width = width;
    g.planes = planes;
    g.block = block;
    g.sub420 = sub420;
    const int64_t m = sub420 ? 2 * block : block;
    g.hp = (height + m - 1) / m * m;
    g.wp = (width + m - 1) / m * m;
    g.hb = g.hp / block;
    g.wb = g.wp / block;
    require(g.hp * g.wp <= 2 * kMaxPixels, "padded image is too large");
    return g;
}

int32_t max_abs_value(int block, int32_t clip) {
    // |D| <= ||basis||_2 * ||block||_2 = 1 * 128 B for level-shifted 8-bit
    // samples, and Q >= 1: no valid quantised value is larger.
    const int32_t bound = 128 * block;
    return clip > 0 && clip < bound ? clip : bound;
}

}  // namespace dcts
