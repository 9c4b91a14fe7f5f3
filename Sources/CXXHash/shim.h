#ifndef CONVOY_CXXHASH_SHIM_H
#define CONVOY_CXXHASH_SHIM_H
// libxxhash's XXH3-128, the per-block checksum that manifests record (see BlockChecksum).
#include <xxhash.h>
#endif
