#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>
#include <libavutil/avutil.h>
#include <libavutil/opt.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>

// Macros that do not import into Swift.
static inline int tally_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int tally_averror_eof(void) { return AVERROR_EOF; }
static inline int64_t tally_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline AVChannelLayout tally_layout_stereo(void) { AVChannelLayout l = AV_CHANNEL_LAYOUT_STEREO; return l; }
static inline AVChannelLayout tally_layout_mono(void) { AVChannelLayout l = AV_CHANNEL_LAYOUT_MONO; return l; }
