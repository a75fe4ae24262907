#include <stdint.h>
#include <x264.h>

// x264_encoder_open is a macro naming the build-versioned symbol.
static inline x264_t *tally_x264_encoder_open(x264_param_t *param) {
    return x264_encoder_open(param);
}
