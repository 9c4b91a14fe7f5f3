#ifndef CONVOY_CFUSE_SHIM_H
#define CONVOY_CFUSE_SHIM_H
// libfuse3's API level must be fixed before its headers are read; 312 makes fuse_loop_mt and the
// fuse_loop_cfg_* functions real symbols rather than function-like macros (which Swift cannot import).
#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#endif
