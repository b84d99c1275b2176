/* The fork generation of fs_queue.h. */
#include "fs_queue.h"

static fs_atomic_u32 fork_generation;

uint32_t fs_fork_generation(void)
{ return fs_load_u32(&fork_generation); }

uint32_t fs_fork_start_generation(void)
{ return fs_fetch_add_u32(&fork_generation, 1) + 1; }
