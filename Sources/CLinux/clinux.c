// Header-only: see include/clinux.h.
