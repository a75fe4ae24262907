#include <ft2build.h>
#include FT_FREETYPE_H

// FT_LOAD_* and FT_Err flags are macros built from casts.
static inline FT_Int32 tally_ft_load_render(void) { return FT_LOAD_RENDER; }
