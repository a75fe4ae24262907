#ifndef TALLY_CHIREDIS_SHIM_H
#define TALLY_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
