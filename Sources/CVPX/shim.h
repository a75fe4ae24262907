#include <vpx/vpx_decoder.h>
#include <vpx/vp8dx.h>

// vpx_codec_dec_init is a macro over the versioned entry point.
static inline vpx_codec_err_t tally_vpx_decoder_init(vpx_codec_ctx_t *ctx, vpx_codec_iface_t *iface, unsigned int threads) {
    vpx_codec_dec_cfg_t cfg = { .threads = threads, .w = 0, .h = 0 };
    return vpx_codec_dec_init(ctx, iface, &cfg, 0);
}
