#ifndef CONVOY_CZLIB_SHIM_H
#define CONVOY_CZLIB_SHIM_H
#include <zlib.h>
// inflateInit2 is a macro; Swift calls this instead. 16 + 15 window bits: gzip framing, 32 KiB window.
static inline int convoy_inflate_init_gzip(z_stream *stream) { return inflateInit2(stream, 16 + MAX_WBITS); }
#endif
