#ifndef TALLY_CSRTP_SHIM_H
#define TALLY_CSRTP_SHIM_H
#include <srtp2/srtp.h>
#endif
