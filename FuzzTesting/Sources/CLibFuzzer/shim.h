#ifndef TALLY_CLIBFUZZER_SHIM_H
#define TALLY_CLIBFUZZER_SHIM_H
#include <stddef.h>
#include <stdint.h>
/* libFuzzer's documented entry for programs that own main(); the symbol comes from the
   fuzzer runtime that -sanitize=fuzzer links in. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
