/*
 * Linked into every libFuzzer binary (the corpus replay has its own main):
 * cJSON, libuv and libcurl allocate through gf_malloc, as in every gpufed
 * program, so the targets fuzz the allocation paths that run in
 * production and their leak checks count every block.
 */
#include "common/alloc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return gf_alloc_global_init();
}
