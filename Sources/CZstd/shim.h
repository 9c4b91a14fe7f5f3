#ifndef CONVOY_CZSTD_SHIM_H
#define CONVOY_CZSTD_SHIM_H
#include <zstd.h>
#endif
