#include <srt/srt.h>
#include <srt/access_control.h>
#include <arpa/inet.h>
#include <syslog.h>

// libsrt narrates to stderr at LOG_ERR for conditions it recovers from; Tally reports what matters itself.
static inline void tally_srt_quiet(void) { srt_setloglevel(LOG_CRIT); }
